"""A notebook session with Tweed, top to bottom (run: python docs/examples/notebook.py).

It uses the example workspace that ships with Tweed; replace the path by a published
BkgOnly.json and patches=[...] for a real analysis. tests/test_docs_examples.py runs this file.
"""

import numpy as np

import tweed
from tweed.cli.demo import demo_path
from tweed.runtime import plots

m = tweed.load(demo_path())                       # compile: IR -> passes -> numba kernels
print(m.poi_name, m.n_params, "parameters")

best = m.fit()                                    # or tweed.infer.fit(m)
print("mu_hat =", best.bestfit[m.poi_index], "+-", best.uncertainties[m.poi_index])

h = tweed.infer.hypotest(m, 1.0)                  # asymptotic CLs, q~mu, expected band
print(h.to_dict())

ul = tweed.infer.upper_limit(m)                   # 95% CLs limits, observed and expected
print(ul.to_dict())

toys = tweed.infer.toy_hypotest(m, 1.0, ntoys=200, seed=1)   # pseudo-experiments
print("toys:", toys.to_dict(), "+-", toys.uncertainty())

scan = tweed.infer.profile_scan(m, ["mu_sig"], [np.linspace(0, 2.5, 11)])
print("68% interval:", scan.intervals["68%"])

rank = tweed.infer.ranking(m)                     # impacts, pulls, constraints
print([(i.name, round(i.size, 4)) for i in rank.impacts[:3]])

gof = tweed.infer.goodness_of_fit(m)
print("saturated GoF p-value:", gof.p_value)

fig = plots.brazil(ul, m.poi_name)                # figures are plain matplotlib
plots.save(fig, "brazil.png")
