# The model behind examples/plot_encoder.py's MixedEffectsEncoder on InstEval:
# crossed random intercepts of students, instructors and departments, REML.
# Run: Rscript tools/make_insteval_encoder_reference.R   (lme4 1.1-31, R 4.2.2)
# Printed (2026-12-03): s 0.106573434, d 0.267572315, dept 0.006719649,
# Residual 1.387071104; REML criterion 237774.9.
suppressMessages(library(lme4))
m <- lmer(y ~ 1 + (1 | s) + (1 | d) + (1 | dept), InstEval)
print(as.data.frame(VarCorr(m)))
print(REMLcrit(m))
