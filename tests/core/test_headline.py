"""Headline formatting: significant figures, units and the "from" value."""

import math

from pipelines.core.headline import Headline, format_headline, headline_parts, significant


def test_significant_figures():
    assert significant(31.14159) == "31.1"
    assert significant(0.0014996350000728853) == "0.00150"
    assert significant(123456.7) == "123457"
    assert significant(-2.5) == "-2.50"
    assert significant(0.0) == "0"
    assert significant(math.nan) == "n/a"
    assert significant(1e-9) == "1.00e-09"


def test_headline_with_units_and_start():
    heads = (Headline("psnr", "Held-out PSNR", "dB", start_key="psnr0"), Headline("err", "Pose error", "°"))
    metrics = {"psnr": 31.14, "psnr0": 17.93, "err": 0.0412}
    assert format_headline(metrics, heads) == "Held-out PSNR 31.1 dB (from 17.9 dB) · Pose error 0.0412°"
    assert headline_parts({"err": 2.0}, heads) == [("Pose error", "2.00°", "")]
    assert format_headline({}, heads) == ""
