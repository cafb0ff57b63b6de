"""FLTrust without a trusted party: the trust reference is the coordinate-wise median of the updates.

FLTrust (Cao, Fang, Liu, Gong, "FLTrust: Byzantine-robust Federated Learning via Trust
Bootstrapping", NDSS 2021) weights each update ``g_i`` by ``ReLU(cos(g_i, g0))`` against a reference
update ``g0`` that the server trains on a small clean root data set. fedledger has no trusted server:
whoever trains ``g0`` could poison it, and a reference trained by one validator is not reproducible by
the other aggregators, so :mod:`.fltrust` cannot run on the ledger.

Here ``g0`` is the coordinate-wise median of the round's accepted updates (Yin, Chen, Ramchandran,
Bartlett, "Byzantine-Robust Distributed Learning", ICML 2018). Why this reference:

* it is a function of chain data alone (the accepted set is derived on chain, the update blobs are
  content-addressed), so every aggregator computes the same ``g0`` bit for bit and the rule is in
  :func:`fedledger.federation.ledger_rules`;
* no party is trusted: fewer than half arbitrary accepted updates cannot move any coordinate of the
  median outside the range of the honest values, so as long as the validators let through a minority
  of attackers the reference points where the honest majority points;
* the alternative, a reference update committed by each validator from its validation data, costs
  a training and a transaction per validator per round, is trained on a few hundred examples, and is
  itself an attack surface (a lying validator commits a poisoned reference).

The median alone is a weak aggregate on non-IID data (it discards most of the honest information,
measured in ``benchmarks/results/robustness.md``); used as a *direction* it keeps the weighted mean's information:
every update that agrees with the majority's direction contributes, in proportion to its agreement.

Magnitude. FLTrust rescales every update to ``|g0|``; the median of non-IID updates is much shorter
than the updates themselves, so that would shrink every step. Instead each update is clipped to the
median of the updates' norms, ``min(1, M / |g_i|)`` with ``M`` the lower median of ``|g_i|`` (as FLAME
clips, Nguyen et al., "FLAME: Taming Backdoors in Federated Learning", USENIX Security 2022): a
boosted update cannot outweigh the typical honest one, and the aggregate's norm is at most ``M``.

Exactness: inner products and norms are exact integers (:mod:`._exact`); cosines and clip factors are
rounded down to ``2^-40`` with integer square roots, so the norm bound holds exactly and every machine
gets the same result.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import exact_gram, exact_sq_norms, mix
from fedledger.learning.aggregation.fltrust import trust_scores
from fedledger.learning.aggregation.median import coordinate_median
from fedledger.learning.aggregation.median_norm import lower_median
from fedledger.learning.aggregation.norm_bounding import clip_factors

__all__ = ["fltrust_median_rule"]


def fltrust_median_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    reference = coordinate_median(batch.matrix)[None, :]
    inner = [int(v) for v in exact_gram(batch.matrix, reference)[:, 0]]
    sq_norms = exact_sq_norms(batch.matrix)
    scores = trust_scores(inner, sq_norms, exact_sq_norms(reference)[0])
    median_sq_norm = lower_median(sq_norms)
    total = sum(scores, Fraction(0))
    details: dict[str, object] = {"trust_scores": [float(s) for s in scores], "median_sq_norm": median_sq_norm}
    if total == 0:
        # The median is zero or no update agrees with it: the model stays where it is.
        zero = tuple(Fraction(0) for _ in scores)
        return RuleOutcome(np.zeros(batch.matrix.shape[1], dtype=np.int64), (), zero, details)
    weights = tuple(s / total for s in scores)
    # min(1, M / |g_i|), rounded down: each clipped update has norm <= M.
    clips = clip_factors(sq_norms, Fraction(median_sq_norm))
    coeffs = [w * c for w, c in zip(weights, clips, strict=True)]
    try:
        row = mix(batch.matrix, coeffs)
    except ValueError as exc:
        raise AggregationError(f"rule 'fltrust-median': cannot combine the updates: {exc}") from exc
    selected = tuple(k for k, w in enumerate(weights) if w)
    return RuleOutcome(row, selected, weights, details)
