# The threat matrix as committed here: 660 runs (2 bank splits x 11 defences x 10 attacks x
# seeds 0-2), run at commit fd7bdbe on the 2-core machine (about 48 min with two joblib
# workers), then the matrix report with the privacy attacks (about 2 min), after the audit
# fixes of commits f5dadc1 and the bank-level DP replay fix that follows it.
python -m fl_credit.simulate +experiment=threat_matrix hydra/launcher=joblib hydra.launcher.n_jobs=2 \
  hydra.sweep.dir=/work/matrix_run
python -m simulations.sweeps.threat_matrix /work/matrix_run --jobs 2
