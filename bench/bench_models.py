"""Benchmark: the training job against plain baselines (and FLAML), on a final holdout.

Three binary data sets, the positive class always the minority (label 1):
``breast cancer`` (scikit-learn's bundled copy, 569 rows, malignant = 1), ``imbalanced``
(``make_classification``, 50,000 x 20, 1:99, 5% of cells missing and two string columns
binned from informative features) and ``digits 8`` (scikit-learn's bundled UCI
handwritten digits, 1,797 x 64, "is it an 8" ~10% positive; the only real data shipped
offline by an installed package, besides breast cancer). Each is split once, stratified
with seed 0: 80% is the job's train channel, 20% a final holdout that no contender sees.

Contenders, all fit on the same 80%: the job (``jobs.train.main``, its defaults and
``--max-seconds`` = the budget; holdout scored through ``jobs.inference``'s
``model_fn``/``input_fn``/``predict_fn`` as served), a default
``HistGradientBoostingClassifier`` (strings as pandas categories), a balanced
``LogisticRegression`` (median / most-frequent imputation, scaling, one-hot) at threshold
0.5 and with the F1-best threshold from 5-fold out-of-fold probabilities, and FLAML
``AutoML`` (``metric="ap"``, same budget, threshold 0.5) from its own venv. Each runs in a
subprocess: "fit s" is fit + holdout prediction inside it, "wall s" the whole process
(interpreter start and imports too), "peak MB" its peak RSS (``VmHWM``).
Prints one table per data set and the job's PR-AUC lead; asserts nothing.

    .venv/bin/python bench/bench_models.py [--budget 60] [--no-flaml] [--flaml-python PATH]

FLAML's venv (default ``bench/flaml-venv`` beside this file)::

    python -m venv bench/flaml-venv && bench/flaml-venv/bin/pip install "flaml[automl]" \
        scikit-learn pandas
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

HERE = Path(__file__).resolve().parent
CONTENDERS = ("job", "hgb", "logreg@0.5", "logreg tuned", "flaml")
BASELINES = ("hgb", "logreg@0.5", "logreg tuned")


def _datasets() -> dict[str, tuple[pd.DataFrame, list[str]]]:
    from sklearn.datasets import load_breast_cancer, load_digits, make_classification

    cancer = load_breast_cancer(as_frame=True).frame
    cancer.columns = [c.replace(" ", "_") for c in cancer.columns]
    cancer = cancer.assign(label=1 - cancer.pop("target"))  # malignant (212 of 569) = 1
    digits = load_digits(as_frame=True).frame
    digits = digits.assign(label=(digits.pop("target") == 8).astype(int))
    x, y = make_classification(
        n_samples=50_000, n_features=20, n_informative=6, n_redundant=4,
        weights=[0.99], flip_y=0.002, shuffle=False, random_state=3,
    )  # fmt: skip
    imb = pd.DataFrame(x, columns=[f"x{i:02d}" for i in range(20)]).round(5)
    rng = np.random.default_rng(3)
    imb = imb.mask(rng.random(imb.shape) < 0.05)  # 5% missing, everywhere
    for col, bins, name in (("x00", 5, "region"), ("x01", 8, "tier")):
        codes = pd.qcut(imb.pop(col), bins, labels=[f"{name}_{chr(97 + i)}" for i in range(bins)])
        imb[name] = codes.astype(object)  # informative, now a string column (NaN stays NaN)
    imb["label"] = y
    return {
        "breast cancer": (cancer, []),
        "imbalanced 1:99": (imb, ["region", "tier"]),
        "digits 8 vs rest": (digits, []),
    }


# ---- the contenders, each run in its own process: python bench_models.py --child NAME DIR


def _as_category(frames: list[pd.DataFrame], categorical: list[str]) -> None:
    for col in categorical:
        kinds = sorted(frames[0][col].dropna().astype(str).unique())
        for frame in frames:
            frame[col] = pd.Categorical(frame[col].astype(object), categories=kinds)


def _logreg(categorical: list[str], numeric: list[str]) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    return make_pipeline(prep, LogisticRegression(class_weight="balanced", max_iter=2000))


def _fit_predict(name: str, folder: Path, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``name`` on job.csv; (positive-class score, predicted positive) on holdout.csv."""
    categorical: list[str] = json.loads((folder / "meta.json").read_text())["categorical"]
    fit = pd.read_csv(folder / "train" / "job.csv")
    hold = pd.read_csv(folder / "holdout.csv").drop(columns="label")
    y = fit.pop("label").to_numpy()
    if name == "job":
        from jobs import inference
        from jobs.train import main

        argv = ["--train", str(folder / "train"), "--target", "label"]
        for flag, sub in (("--model-dir", "model"), ("--output-data-dir", "data")):
            argv += [flag, str(folder / "job" / sub)]
        argv += ["--output-dir", str(folder / "job" / "out"), "--max-seconds", str(budget)]
        if main(argv + (["--categorical", ",".join(categorical)] if categorical else [])):
            raise SystemExit((folder / "job" / "out" / "failure").read_text())
        model = inference.model_fn(str(folder / "job" / "model"))
        rows = inference.input_fn(
            hold[model["features"]].to_json(orient="records"), "application/json"
        )
        out = inference.predict_fn(rows, model)
        score = out["probabilities"][:, model["_positive_index"]]
        return score, np.array(out["labels"]) == model["positive_label"]
    if name in ("hgb", "flaml"):
        _as_category([fit, hold], categorical)
        if name == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            clf = HistGradientBoostingClassifier(random_state=0).fit(fit, y)
        else:
            from flaml import AutoML

            clf = AutoML()
            clf.fit(
                fit, y, task="classification", metric="ap", time_budget=budget, seed=0, verbose=0
            )
        score = clf.predict_proba(hold)[:, 1]
        return score, score >= 0.5
    from sklearn.metrics import precision_recall_curve
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    numeric = [c for c in fit.columns if c not in categorical]
    pipe = _logreg(categorical, numeric)
    threshold = 0.5
    if name == "logreg tuned":
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        oof = cross_val_predict(pipe, fit, y, cv=folds, method="predict_proba")[:, 1]
        precision, recall, cuts = precision_recall_curve(y, oof)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        threshold = float(cuts[np.argmax(f1[:-1])])
    score = pipe.fit(fit, y).predict_proba(hold)[:, 1]
    return score, score >= threshold


def _child(name: str, folder: Path, budget: int) -> None:
    import resource

    start = time.perf_counter()
    score, pred = _fit_predict(name, folder, budget)
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: after exec, ru_maxrss still counts the forked parent's pages
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]
    peak = max(int(status), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    np.savez(folder / f"{name}.npz", score=score, pred=pred, seconds=seconds, peak=peak)


# ---- the parent: data, subprocesses, tables


def _run(cmd: list[str], log: Path, env: dict[str, str]) -> tuple[int, float]:
    """(exit code, wall seconds) of one subprocess, its output to ``log``."""
    start = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    return code, time.perf_counter() - start


def _scores(y: np.ndarray, score: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        f1_score,
        roc_auc_score,
    )

    return {
        "F1": f1_score(y, pred, zero_division=0),
        "PR-AUC": average_precision_score(y, score),
        "ROC-AUC": roc_auc_score(y, score),
        "bal.acc": balanced_accuracy_score(y, pred),
    }


def _flaml_ready(python: Path) -> str | None:
    """None when ``python`` can import FLAML's AutoML, else why not."""
    if not python.is_file():
        return f"no interpreter at {python}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    check = subprocess.run(
        [str(python), "-c", "from flaml import AutoML"], capture_output=True, text=True, env=env
    )
    return None if check.returncode == 0 else check.stderr.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=60, help="seconds for FLAML and the job")
    parser.add_argument("--no-flaml", action="store_true", help="skip FLAML")
    parser.add_argument("--flaml-python", type=Path, default=HERE / "flaml-venv/bin/python")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), args.budget)
        return

    from sklearn.model_selection import train_test_split

    contenders = list(CONTENDERS)
    why = "--no-flaml" if args.no_flaml else _flaml_ready(args.flaml_python)
    if why:
        contenders.remove("flaml")
        print(f"FLAML skipped: {why}")
    print(f"budget {args.budget} s (job --max-seconds, FLAML time_budget); {os.cpu_count()} CPUs")
    started = time.perf_counter()
    for title, (frame, categorical) in _datasets().items():
        fit, hold = train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=0)
        n_pos = int(hold["label"].sum())
        print(
            f"\n== {title}: {len(frame):,} rows x {frame.shape[1] - 1} features "
            f"({len(categorical)} categorical), {frame['label'].mean():.2%} positive, "
            f"{int(frame.isna().sum().sum()):,} missing cells; "
            f"holdout {len(hold):,} rows ({n_pos} positive)"
        )
        rows: dict[str, dict[str, float]] = {}
        with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
            folder = Path(tmp)
            (folder / "train").mkdir()
            fit.to_csv(folder / "train" / "job.csv", index=False)
            hold.to_csv(folder / "holdout.csv", index=False)
            (folder / "meta.json").write_text(json.dumps({"categorical": categorical}))
            env = {**os.environ, "SM_INPUT_CONFIG_DIR": str(folder / "config")}
            env["SM_OUTPUT_DIR"] = str(folder / "job" / "out")
            for name in contenders:
                python = str(args.flaml_python) if name == "flaml" else sys.executable
                run_env = env
                if name == "flaml":
                    run_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
                cmd = [python, str(Path(__file__).resolve()), "--child", name, str(folder)]
                cmd += ["--budget", str(args.budget)]
                log = folder / f"{name}.log"
                code, wall = _run(cmd, log, run_env)
                if code != 0:
                    tail = "\n   ".join(log.read_text().strip().splitlines()[-5:])
                    print(f"-- {name} failed (exit {code}):\n   {tail}")
                    continue
                saved = np.load(folder / f"{name}.npz")
                scores = _scores(hold["label"].to_numpy(), saved["score"], saved["pred"])
                scores["fit s"], scores["wall s"] = float(saved["seconds"]), wall
                scores["peak MB"] = float(saved["peak"])
                rows[name] = scores
        columns = ("F1", "PR-AUC", "ROC-AUC", "bal.acc", "fit s", "wall s", "peak MB")
        print(f"{'':<13}" + "".join(f"{c:>9}" for c in columns))
        for name, scores in rows.items():
            cells = (
                f"{scores[c]:>9.0f}" if c == "peak MB" else f"{scores[c]:>9.3f}" for c in columns
            )
            print(f"{name:<13}" + "".join(cells))
        plain = [b for b in BASELINES if b in rows]
        if "job" in rows and plain:
            best = max(plain, key=lambda b: rows[b]["PR-AUC"])
            ours = rows["job"]["PR-AUC"]
            lead = f"job PR-AUC - best plain baseline ({best}): {ours - rows[best]['PR-AUC']:+.3f}"
            if "flaml" in rows:
                lead += f"; - FLAML: {ours - rows['flaml']['PR-AUC']:+.3f}"
            print(lead)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
