"""Privacy audit of a run: what the coordinator (or colluding banks) can learn.

- :mod:`.ground_truth`: a run's configuration, the banks' own rows and the final model;
- :mod:`.replay`: one bank's local training step and whole federations, in-process (shadow
  federations for membership inference, colluders' own contributions);
- :mod:`.inversion`: update inversion for logistic regression;
- :mod:`.properties`: a bank's default rate from what the server sees;
- :mod:`.membership`: loss-threshold and LiRA membership inference.

``python -m simulations.studies.privacy_audit RUN_DIR`` runs them all and writes the report.
"""
