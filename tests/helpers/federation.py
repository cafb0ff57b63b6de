"""What a round should have produced, recomputed in the clear from the members' own (seeded) updates."""

from __future__ import annotations

import hashlib

from fedledger.federation.setup import SimulatedConsortium
from fedledger.learning import apply_update, encode_model, fedavg


def plaintext_fedavg_hash(sim: SimulatedConsortium, round_id: int, members: list[str]) -> str:
    """The model hash plaintext FedAvg gives for ``members``' updates in a round (training is seeded, so each
    member's update is replayed exactly): what a secure or masked round must finalize on, bit for bit."""
    info = sim.task.round(round_id)
    nodes = {n.account.address: n for n in sim.nodes}
    first = nodes[members[0]]
    global_params, spec = first.global_model(info.global_model)
    updates, weights = [], []
    for m in sorted(members):
        update, _, n, _ = nodes[m].local_update(info)
        updates.append(update)
        weights.append(n)
    params = apply_update(global_params, fedavg(updates, weights), frac_bits=first.config.frac_bits)
    return "0x" + hashlib.sha256(encode_model(params, spec, metadata={"round": str(round_id)})).hexdigest()
