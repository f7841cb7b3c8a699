"""The inference runtime: it sees only a CompiledModel (model.py) and does fits (fit.py),
test statistics (teststat.py), asymptotic CLs (asymptotics.py), hypothesis tests and limits
(infer.py)."""
