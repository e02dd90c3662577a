"""The runtime training, inference and evaluation share (trainer/runtime.py): the device
models run on and the machine facts a training run records."""

from __future__ import annotations

import os

import torch
from loraledger.trainer.runtime import default_device, hardware, read_lines


def test_the_device_is_the_gpu_when_there_is_one() -> None:
    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")


def test_hardware_names_the_machine_as_it_is() -> None:
    facts = hardware()
    assert facts["cpu_count"] == os.cpu_count()
    assert facts["torch_threads"] == torch.get_num_threads()
    assert {"machine", "system"} <= set(facts)
    if read_lines("/proc/cpuinfo"):
        assert facts["cpu"] and facts["memory_gib"] > 0
    assert ("gpu" in facts) == torch.cuda.is_available()


def test_an_unreadable_file_reads_as_no_lines() -> None:
    assert read_lines("/nonexistent/cpuinfo") == []
