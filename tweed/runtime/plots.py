"""The plots physicists publish, from Tweed's results (matplotlib with mplhep styling).

Every function takes result objects (or plain dicts of arrays), returns the matplotlib Figure
and draws the numbers it was given, nothing recomputed; save(fig, path) writes it atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

BAND_COLOURS = ("#ffdf00", "#00c000")  # +-2 sigma yellow, +-1 sigma green


def save(fig, path: str | Path) -> None:
    """Write a figure so that a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, bbox_inches="tight", dpi=120)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        plt.close(fig)


def brazil(limit, poi_name: str = "mu"):
    """CLs against the POI with the expected band, the CLs level and the limits."""
    pts = sorted(limit.scan, key=lambda h: h.mu)
    mu = np.array([h.mu for h in pts])
    obs = np.array([h.CLs_obs for h in pts])
    exp = np.array([h.CLs_exp for h in pts])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.fill_between(mu, exp[:, 0], exp[:, 4], color=BAND_COLOURS[0], label=r"expected $\pm 2\sigma$")
    ax.fill_between(mu, exp[:, 1], exp[:, 3], color=BAND_COLOURS[1], label=r"expected $\pm 1\sigma$")
    ax.plot(mu, exp[:, 2], "k--", label="expected", gid="expected")
    ax.plot(mu, obs, "k-", marker=".", label="observed", gid="observed")
    ax.axhline(limit.level, color="red", lw=1, label=f"CLs = {limit.level}")
    ax.axvline(limit.upper_limit_obs, color="k", lw=0.8, ls=":", gid="limit_obs")
    ax.set_xlabel(poi_name)
    ax.set_ylabel("CLs")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"observed limit {limit.upper_limit_obs:.4g}, expected {limit.upper_limit_exp[2]:.4g}")
    ax.legend(frameon=False)
    return fig


def contour(records: list[dict], x: str, y: str, level: float = 0.05, key: str = "CLs"):
    """Exclusion contour in the plane of two patch labels (e.g. masses) from scan records:
    observed and expected CLs = level, the expected +-1 sigma band shaded."""
    pts = [r for r in records if r.get("status") == "ok"]
    if len(pts) < 3:
        raise ValueError("an exclusion contour needs at least three successful scan points")
    X = np.array([float(r["values"][x]) for r in pts])
    Y = np.array([float(r["values"][y]) for r in pts])
    obs = np.array([r[f"{key}_obs"] for r in pts])
    exp = np.array([r[f"{key}_exp"] for r in pts])
    fig, ax = plt.subplots(figsize=(6, 5))
    band = (exp[:, 1] - level) * (exp[:, 3] - level)
    if np.any(band < 0):
        ax.tricontourf(X, Y, band, levels=[band.min() - 1, 0.0], colors=[BAND_COLOURS[0]], alpha=0.7)
    ax.tricontour(X, Y, exp[:, 2], levels=[level], colors="k", linestyles="--")
    ax.tricontour(X, Y, obs, levels=[level], colors="r")
    ax.scatter(X, Y, c=np.where(obs < level, "r", "0.6"), s=8, gid="points")
    ax.plot([], [], "r-", label=f"observed (CLs = {level})")
    ax.plot([], [], "k--", label="expected")
    ax.fill_between([], [], color=BAND_COLOURS[0], label=r"expected $\pm 1\sigma$")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(frameon=False)
    return fig


def pulls(ranking):
    """Pull (theta_hat - centre) / prefit width with the constraint as error bar."""
    rows = [i for i in ranking.impacts if i.pull is not None]
    names = [i.name for i in rows]
    p = np.array([i.pull for i in rows])
    c = np.array([i.constraint for i in rows])
    fig, ax = plt.subplots(figsize=(6, 0.25 * len(rows) + 1.2))
    yy = np.arange(len(rows))[::-1]
    ax.axvspan(-2, 2, color=BAND_COLOURS[0])
    ax.axvspan(-1, 1, color=BAND_COLOURS[1])
    ax.errorbar(p, yy, xerr=c, fmt="ko", ms=3, gid="pulls")
    ax.set_yticks(yy, names, fontsize=7)
    ax.set_xlabel(r"$(\hat\theta - \theta_0) / \Delta\theta$")
    ax.set_xlim(-3, 3)
    return fig


def impacts(ranking, top: int = 20):
    """Ranking of nuisance parameters by their post-fit impact on the POI."""
    rows = ranking.impacts[:top]
    names = [i.name for i in rows]
    yy = np.arange(len(rows))[::-1]
    up = np.array([i.postfit_up for i in rows])
    dn = np.array([i.postfit_down for i in rows])
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(rows) + 1.2))
    ax.barh(yy, up, color="#4060c0", label=r"post-fit $+1\sigma$", gid="post_up")
    ax.barh(yy, dn, color="#60c0e0", label=r"post-fit $-1\sigma$", gid="post_down")
    pre_up = [i.prefit_up if i.prefit_up is not None else 0.0 for i in rows]
    pre_dn = [i.prefit_down if i.prefit_down is not None else 0.0 for i in rows]
    ax.barh(yy, pre_up, fill=False, edgecolor="#4060c0", label=r"pre-fit $\pm 1\sigma$")
    ax.barh(yy, pre_dn, fill=False, edgecolor="#60c0e0")
    ax.set_yticks(yy, names, fontsize=7)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel(rf"$\Delta${ranking.poi}")
    ax.legend(frameon=False, fontsize=7)
    return fig


def yields(channels: dict[str, dict[str, np.ndarray]], data: dict[str, np.ndarray], title: str = ""):
    """Stacked expected yields per sample and the observed counts, one panel per channel."""
    import mplhep

    names = list(channels)
    ncol = min(4, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.8 * nrow), squeeze=False)
    for ax, ch in zip(axes.ravel(), names):
        samples = channels[ch]
        nb = len(next(iter(samples.values())))
        edges = np.arange(nb + 1)
        mplhep.histplot([samples[s] for s in samples], edges, stack=True, histtype="fill",
                        label=list(samples), ax=ax)
        ax.errorbar(edges[:-1] + 0.5, data[ch], yerr=np.sqrt(data[ch]), fmt="ko", ms=3, gid=f"data:{ch}")
        ax.set_title(ch, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=6, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def correlation(fit_result, max_params: int = 60):
    """Correlation matrix of a fit (the free parameters, at most max_params of them)."""
    corr = fit_result.correlation()
    free = np.flatnonzero(~fit_result.fixed)[:max_params]
    c = corr[np.ix_(free, free)]
    names = [fit_result.par_names[i] for i in free]
    fig, ax = plt.subplots(figsize=(0.18 * len(free) + 3, 0.18 * len(free) + 2.5))
    im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1, gid="correlation")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=5)
    ax.set_yticks(range(len(names)), names, fontsize=5)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


def profile(scan):
    """A profile-likelihood scan: Delta(2 NLL) in 1D with the 68%/95% levels, contours in 2D."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if len(scan.params) == 1:
        x = scan.grids[0]
        ax.plot(x, scan.delta, "k-", marker=".", gid="profile")
        for lvl, style in ((1.0, ":"), (3.84, "--")):
            ax.axhline(lvl, color="r", ls=style, lw=1)
        ax.set_xlabel(scan.params[0])
        ax.set_ylabel(r"$-2\Delta\ln L$")
    else:
        X, Y = np.meshgrid(scan.grids[0], scan.grids[1], indexing="ij")
        ax.contour(X, Y, scan.delta, levels=[2.30, 5.99], colors=["k", "k"], linestyles=["-", "--"])
        i, j = scan._idx
        ax.plot(scan.best.bestfit[i], scan.best.bestfit[j], "k+", gid="best")
        ax.set_xlabel(scan.params[0])
        ax.set_ylabel(scan.params[1])
    return fig
