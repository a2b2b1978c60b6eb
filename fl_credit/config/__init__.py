"""The experiment configuration: schema, parsing, validation, Hydra composition, user errors."""
