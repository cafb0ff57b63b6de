"""ServerApp: FedAvg over every SuperNode, each round timed on the server's clock.

A round starts once the strategy has sampled its nodes for training, and ends when it has aggregated the
federated evaluation of the new model (Flower's FedAvg round: train, then evaluate on every node); ``trained``
marks the end of the training half. The timings, with each node's local training seconds, go to the run
config's ``timings-file`` as JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from flower_heart.task import initial_params

app = ServerApp()


class TimedFedAvg(FedAvg):
    """FedAvg that records, per round, when it started, when training was aggregated and when it ended."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rounds: dict[int, dict[str, Any]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        configured = time.time()
        messages = super().configure_train(server_round, arrays, config, grid)
        # The round starts once its nodes are sampled: round 1 waits here until every SuperNode has connected.
        self.rounds[server_round] = {"round": server_round, "configured": configured, "start": time.time()}
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        record = self.rounds[server_round]
        record["trained"] = time.time()
        record["train_seconds"] = [float(m.content["metrics"]["train-seconds"]) for m in replies if m.has_content()]
        record["replies"] = len(replies)
        return super().aggregate_train(server_round, replies)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        result = super().aggregate_evaluate(server_round, replies)
        record = self.rounds[server_round]
        record["end"] = time.time()
        if result is not None:
            record["accuracy"] = float(result["accuracy"])
        return result


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    nodes = int(config["num-supernodes"])
    strategy = TimedFedAvg(
        fraction_train=1.0,
        fraction_evaluate=1.0,
        min_train_nodes=nodes,
        min_evaluate_nodes=nodes,
        min_available_nodes=nodes,
    )
    started = time.time()
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(initial_params(int(config["n-features"]))),
        num_rounds=int(config["num-server-rounds"]),
    )
    out = str(config["timings-file"])
    if out:
        doc = {"started": started, "finished": time.time(), "rounds": list(strategy.rounds.values())}
        Path(out).write_text(json.dumps(doc, indent=1))
