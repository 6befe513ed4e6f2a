"""A seeded, fraud-like, imbalanced dataset made in code (no download).

Card transactions with a rare positive class. `shift` moves the feature
distributions the way a new market or a fraud campaign would, so the drift
monitor has something real to find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = (
    "amount",
    "hour",
    "distance_km",
    "tx_last_24h",
    "card_age_days",
    "merchant_risk",
    "foreign",
)


def transactions(
    rows: int, *, fraud_rate: float = 0.02, shift: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    """`rows` labelled transactions (`label` 1 = fraud), shifted by `shift` in [0, 1]."""
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    if not 0 < fraud_rate < 0.5:
        raise ValueError(f"fraud_rate must be in (0, 0.5), got {fraud_rate}")
    rng = np.random.default_rng(seed)
    fraud = rng.random(rows) < fraud_rate
    n_fraud = int(fraud.sum())

    amount = rng.lognormal(3.4 + 0.5 * shift, 0.9, rows)
    amount[fraud] = rng.lognormal(4.2, 1.0, n_fraud)
    hour = rng.normal(14 - 3 * shift, 4, rows) % 24
    hour[fraud] = rng.normal(4, 4, n_fraud) % 24
    distance = rng.exponential(8 + 25 * shift, rows)
    distance[fraud] = rng.exponential(35, n_fraud)
    tx_24h = rng.poisson(2 + shift, rows).astype(float)
    tx_24h[fraud] = rng.poisson(4, n_fraud)
    card_age = rng.gamma(2.0, 400, rows)
    card_age[fraud] = rng.gamma(1.3, 200, n_fraud)
    merchant = rng.beta(2, 8 - 3 * shift, rows)
    merchant[fraud] = rng.beta(3.5, 5, n_fraud)
    foreign = (rng.random(rows) < 0.05 + 0.3 * shift).astype(float)
    foreign[fraud] = (rng.random(n_fraud) < 0.3).astype(float)

    frame = pd.DataFrame(
        {
            "amount": amount.round(2),
            "hour": hour.round(2),
            "distance_km": distance.round(2),
            "tx_last_24h": tx_24h,
            "card_age_days": card_age.round(1),
            "merchant_risk": merchant.round(4),
            "foreign": foreign,
            "label": fraud.astype(int),
        }
    )
    # Real feeds carry gaps and resent rows: the training job must clean them.
    gaps = rng.random(rows) < 0.01
    frame.loc[gaps, "merchant_risk"] = np.nan
    resent = frame.sample(frac=0.005, random_state=seed)
    return pd.concat([frame, resent], ignore_index=True)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def features_csv(frame: pd.DataFrame) -> str:
    """Rows as the endpoint takes them: features in order, no header, no label."""
    return str(frame.loc[:, list(FEATURES)].to_csv(index=False, header=False))
