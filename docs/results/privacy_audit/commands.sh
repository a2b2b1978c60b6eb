# The commands behind docs/results/privacy_audit (run from the repository root; 10 min 9 s on the
# shared 2-core machine, the audit itself about 4 min).

common="engine.backend=inprocess audit.record_server_view=true"
nice python -m fl_credit.simulate strategy=fedavg $common hydra.run.dir=runs/fedavg
nice python -m fl_credit.simulate strategy=secagg $common hydra.run.dir=runs/secagg
nice python -m fl_credit.simulate strategy=fedavg train.optimizer=sgd $common hydra.run.dir=runs/fedavg_sgd
nice python -m fl_credit.simulate strategy=secagg train.optimizer=sgd $common hydra.run.dir=runs/secagg_sgd
for eps in 8 4; do
nice python -m fl_credit.simulate strategy=secagg dp=opacus dp.epsilon=$eps $common hydra.run.dir=runs/secagg_dp$eps
done
nice python -m fl_credit.simulate strategy=fedavg dp=opacus dp.epsilon=8 $common hydra.run.dir=runs/fedavg_dp8
nice python -m fl_credit.simulate strategy=secagg dp=opacus dp.epsilon=2 $common hydra.run.dir=runs/secagg_dp2

R=runs
time nice python -m simulations.studies.privacy_audit $R/fedavg $R/secagg $R/fedavg_sgd $R/secagg_sgd $R/secagg_dp8 $R/secagg_dp4 $R/fedavg_dp8 --shadows 16 --summary $R/summary > $R/audit.log 2>&1
for r in secagg secagg_sgd secagg_dp4; do nice python -m fl_credit.evasion $R/$r > $R/evasion_$r.log 2>&1; done
