"""The shipped model specs (YAML), installed as the package ``bayes_wake.models``."""
