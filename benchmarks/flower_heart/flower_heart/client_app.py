"""ClientApp: one hospital trains the global model on its own rows, and scores the new global model."""

from __future__ import annotations

import time

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flower_heart.task import evaluate as evaluate_model
from flower_heart.task import load

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    # scikit-learn loads once per training message (a new process each time): runtime cost, outside the timing.
    from flower_heart.train import fit

    started = time.perf_counter()
    X, y, _, _ = load(str(context.node_config["data"]))
    params = msg.content["arrays"].to_numpy_ndarrays()
    config = context.run_config
    seed = int(context.node_config.get("partition-id", 0)) * 1000 + int(msg.content["config"]["server-round"])
    iters = int(config["local-epochs"]) * int(config["iters-per-epoch"])
    new = fit(params, X, y, C=float(config["C"]), iters=iters, seed=seed)
    # Local work only (loading the rows, training), as fedledger's train_seconds: the rest of the round is runtime.
    seconds = time.perf_counter() - started
    metrics = MetricRecord({"num-examples": len(y), "train-seconds": seconds})
    return Message(content=RecordDict({"arrays": ArrayRecord(new), "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    _, _, X_val, y_val = load(str(context.node_config["data"]))
    accuracy, loss = evaluate_model(msg.content["arrays"].to_numpy_ndarrays(), X_val, y_val)
    metrics = MetricRecord({"num-examples": len(y_val), "accuracy": accuracy, "loss": loss})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
