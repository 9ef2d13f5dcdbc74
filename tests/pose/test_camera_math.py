"""Pose's camera helpers: spherical round trips, random turns, look-at rotations."""

from __future__ import annotations

import math

import pytest
import torch

from pipelines.pose.camera_math import look_at, position_to_spherical, rotation_error_deg, spherical_to_position, turn


def test_camera_helpers_round_trip():
    position = spherical_to_position(3.0, 25.0, -40.0)
    assert position_to_spherical(position) == pytest.approx((3.0, 25.0, -40.0), abs=1e-4)
    turned = turn(position, 30.0, torch.Generator().manual_seed(0))
    cos = float(torch.dot(position, turned) / (position.norm() * turned.norm()))
    assert math.degrees(math.acos(min(1.0, cos))) == pytest.approx(30.0, abs=1e-3)
    R, _ = look_at(position[None])
    assert float(rotation_error_deg(R, R)[0]) == pytest.approx(0.0, abs=1e-2)
