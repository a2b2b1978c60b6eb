# Measurements behind docs/threats.md (PYTHONPATH = the worktree; run from any folder).

# The small-cell matrix: ten equal banks, 6 defences x 9 attacks x seeds 0-1, 5 rounds
# (108 runs, about 30 min with two workers on the shared 2-core machine).
python -m fl_credit.simulate +experiment=threat_matrix '~hydra.callbacks.sweep_report' \
  hydra/launcher=joblib hydra.launcher.n_jobs=2 +threat_split=ten_equal \
  +defence=fedavg,fedmedian,krum,rfa,centered_clip,dnc \
  attack=none,backdoor,model_replacement,fang_krum,fang_trim,min_max,ipm,alie_full,clip_edge \
  seed=0,1 train.rounds=5 metrics.bootstrap=0 audit.record_server_view=false \
  hydra.sweep.dir=/tmp/threats/small
python -m simulations.sweeps.threat_matrix /tmp/threats/small --no-audit --resamples 500
cp /tmp/threats/small/{summary.md,summary.csv,paired.csv,runs.csv} docs/results/threats/small_matrix/

# Free-rider detection: one free rider (zero or disguised) of ten banks, seeds 0-9, 5 rounds.
python -m simulations.studies.free_rider_detection --defences fedavg,fedmedian,krum --seeds 0-9 \
  --rounds 5 --out docs/results/threats/free_riders.csv
# The other per-bank defences, seeds 0-4 (the threshold was set on the runs above; about 6 min):
python -m simulations.studies.free_rider_detection \
  --defences trimmed_mean,multikrum,bulyan,norm_bound,centered_clip,rfa,dnc --seeds 0-4 \
  --rounds 5 --out docs/results/threats/free_riders_other_defences.csv
# Ten rounds (the full rerun's setting), FedAvg and Krum, seeds 0-2:
python -m simulations.studies.free_rider_detection --defences fedavg,krum --seeds 0-2 --rounds 10 \
  --out docs/results/threats/free_riders_10_rounds.csv

# Positive controls. The attacks that reverse a plain mean (seed 0, 10 rounds; the tests use 5):
#   python -m fl_credit.simulate +threat_split=ten_equal +defence=<defence> attack=<attack> \
#     train.rounds=10 train.optimizer=sgd engine.backend=inprocess metrics.bootstrap=0
# The attacks bounded by the honest spread, FedAvg drop per seed; Krum's selection of fang_krum;
# the update geometry behind them (about 25, 6 and 1 min on the loaded 2-core machine):
python -m simulations.studies.threat_controls --defence fedavg --seeds 0-9 --rounds 5 \
  --attacks fang_trim,fang_trim:3,min_max,min_sum,alie_full,fang_krum
python -m simulations.studies.threat_controls --krum-selection --seeds 0-9 --rounds 5
python -m simulations.studies.threat_controls --geometry --attacks min_max,fang_trim,fang_krum,alie_full --seeds 0
python -m pytest -q -p no:cacheprovider tests/e2e/test_threat_controls.py tests/e2e/test_threat_backdoor.py

# The backdoor cells were rerun after conf/attack/backdoor.yaml moved to the default trigger
# (the first sweep's 12 backdoor runs trained on G2; they were moved out of the sweep folder,
# the rerun's run folders copied in as jobs 200-211, and the report rebuilt):
python -m fl_credit.simulate +experiment=threat_matrix '~hydra.callbacks.sweep_report' \
  hydra/launcher=joblib hydra.launcher.n_jobs=2 +threat_split=ten_equal \
  +defence=fedavg,fedmedian,krum,rfa,centered_clip,dnc attack=backdoor seed=0,1 \
  train.rounds=5 metrics.bootstrap=0 audit.record_server_view=false \
  hydra.sweep.dir=/tmp/threats/small_bd

# ---------------------------------------------------------------------------------------------
# The headline cells, seeds 0-9 (docs/results/threats/headline/; 5 rounds, in-process engine,
# one joblib worker under nice on the shared 2-core machine, which ran at 20-30 s a run).
# Batch A ran at main 1be7246 and was stopped after its FedAvg cells (jobs 0-39: none,
# backdoor, model_replacement, ipm; the FedAvg code path is unchanged at 94e4d57). Batch C
# ran at 94e4d57 (this branch) and was stopped after its FLTrust and FLAME cells (jobs 0-59);
# batch D (same code) ran the median, DnC and Krum clean and under model replacement. The
# other cells stay in the 2-seed small matrix above.
python -m fl_credit.simulate +experiment=threat_matrix '~hydra.callbacks.sweep_report' \
  hydra/launcher=joblib hydra.launcher.n_jobs=1 +threat_split=ten_equal \
  +defence=fedavg,fedmedian,krum,rfa,centered_clip,dnc \
  attack=none,backdoor,model_replacement,ipm,clip_edge \
  seed=0,1,2,3,4,5,6,7,8,9 train.rounds=5 metrics.bootstrap=0 audit.record_server_view=true \
  hydra.sweep.dir=/tmp/threats_defences/headline_a          # stopped at job 40
python -m fl_credit.simulate +experiment=threat_matrix '~hydra.callbacks.sweep_report' \
  hydra/launcher=joblib hydra.launcher.n_jobs=1 +threat_split=ten_equal \
  +defence=fltrust,flame,fedmedian,rfa,dnc,centered_clip,krum \
  attack=none,model_replacement,ipm \
  seed=0,1,2,3,4,5,6,7,8,9 train.rounds=5 metrics.bootstrap=0 audit.record_server_view=true \
  hydra.sweep.dir=/tmp/threats_defences/headline_c          # stopped at job 60
python -m fl_credit.simulate +experiment=threat_matrix '~hydra.callbacks.sweep_report' \
  hydra/launcher=joblib hydra.launcher.n_jobs=1 +threat_split=ten_equal \
  +defence=fedmedian,dnc,krum attack=none,model_replacement \
  seed=0,1,2,3,4,5,6,7,8,9 train.rounds=5 metrics.bootstrap=0 audit.record_server_view=true \
  hydra.sweep.dir=/tmp/threats_defences/headline_d
# one folder for the report: A's jobs 0-39 as 1000-1039, C's 0-59, D's as 2000 + job
H=/tmp/threats_defences/headline && mkdir -p $H
for i in $(seq 0 39); do ln -s /tmp/threats_defences/headline_a/$i $H/$((1000 + i)); done
for i in $(seq 0 59); do ln -s /tmp/threats_defences/headline_c/$i $H/$i; done
for d in /tmp/threats_defences/headline_d/[0-9]*; do ln -s $d $H/$((2000 + $(basename $d))); done
python -m simulations.sweeps.threat_matrix $H --no-audit --resamples 2000
mkdir -p docs/results/threats/headline
cp $H/{summary.md,summary.csv,paired.csv,costs.csv,runs.csv} docs/results/threats/headline/
