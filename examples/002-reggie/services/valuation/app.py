"""ReggieValuation: prices a vehicle with the LightGBM model shipped in the image."""

from __future__ import annotations

import json
from pathlib import Path

MODEL = Path(__file__).with_name("model.txt")
_booster = None


def _model():
    global _booster
    if _booster is None:
        import lightgbm  # in the image, not in a zip: too big for Lambda's 250 MB limit

        _booster = lightgbm.Booster(model_file=str(MODEL))
    return _booster


def handler(event, context):
    features = [[float(v) for v in event["features"]]]
    price = float(_model().predict(features)[0])
    return {"statusCode": 200, "body": json.dumps({"price": round(price, 2)})}
