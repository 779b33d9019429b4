#!/usr/bin/env python3
"""Write safetensors files with Hugging Face's own writer, for rlxf's reader to be checked on.

  tests/fixtures/io/hf_reference.safetensors
      one tensor per dtype rlxf reads (F64, F32, F16, BF16, I64, I32, U8, BOOL), a scalar, a
      zero-size tensor and metadata with a non-ASCII value; tests/test_io_safetensors.cpp
      reads it and checks every value.
  tests/fuzz/corpus/safetensors/*.safetensors
      small valid files that seed the fuzzer (tests/fuzz).

HF lays tensors out by dtype (descending), then by name, which differs from name order, so
the test also sees a file whose data order is not its name order. Each file has at most one
metadata key: HF writes metadata in Rust HashMap order, which varies from run to run, and
with one key the files come out the same every time.
numpy has no bfloat16, so the BF16 tensor is passed to safetensors.serialize as raw bits of
values that bfloat16 represents exactly.

Needs: pip install safetensors numpy   (made with safetensors 0.8.0, numpy 2.4.6)
Usage: python tools/make_io_fixture.py [--root .]
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
from safetensors import TensorSpec, deserialize, serialize
from safetensors.numpy import load, save


def reference_tensors() -> dict[str, np.ndarray]:
    return {
        "f64": np.array([np.pi, -np.e, 1e-300, 1e300], dtype=np.float64),
        "f32.matrix": (np.arange(6, dtype=np.float32).reshape(2, 3) * np.float32(0.5)) - np.float32(1),
        "f16": np.array([0.5, -2.5, 65504.0, 2.0**-24, 1.0 / 3.0], dtype=np.float16),  # 1/3 rounds
        "i64": np.array([[-(2**63), 2**40], [0, 2**63 - 1]], dtype=np.int64),
        "i32": np.array([-(2**31), -1, 0, 2**31 - 1], dtype=np.int32),
        "u8": np.arange(0, 256, 51, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


# bfloat16 bits of 1.0, -2.5, 3.140625, -0.0078125 (all exact in bfloat16)
BF16_BITS = np.array([0x3F80, 0xC020, 0x4049, 0xBC00], dtype=np.uint16)
METADATA = {"note": "rlxf fixture \u03b5"}


def write_reference(path: pathlib.Path) -> None:
    tensors = reference_tensors()
    specs = {
        name: TensorSpec(dtype=a.dtype.name, shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes)
        for name, a in tensors.items()
    }
    specs["bf16"] = TensorSpec(dtype="bfloat16", shape=[4], data_ptr=BF16_BITS.ctypes.data, data_len=8)
    data = bytes(serialize(specs, metadata=METADATA))
    path.write_bytes(data)

    back = dict(deserialize(data))  # check it reads back as written
    assert back["bf16"]["dtype"] == "BF16" and back["bf16"]["data"] == BF16_BITS.tobytes()
    for name, a in tensors.items():
        assert back[name]["shape"] == list(a.shape)
        assert bytes(back[name]["data"]) == a.tobytes(), name
    print(f"{path}: {len(data)} bytes, {len(specs)} tensors")


def write_corpus(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "empty": ({}, None),
        "metadata_only": ({}, {"format": "pt"}),
        "scalar": ({"s": np.array(1.25, dtype=np.float32)}, None),
        "mixed": (
            {
                "a.weight": np.array([[1.0, -2.0], [0.5, 4.0]], dtype=np.float32),
                "b": np.array([1.0, 2.0, 3.0], dtype=np.float16),
                "ids": np.array([7, -1], dtype=np.int64),
                "ok": np.array([True, False]),
            },
            {"step": "3"},
        ),
        "zero_size": ({"z": np.zeros((0, 3), dtype=np.float64), "u": np.arange(4, dtype=np.uint8)}, None),
    }
    for name, (tensors, metadata) in seeds.items():
        data = save(tensors, metadata=metadata)
        assert {k: v.tobytes() for k, v in load(data).items()} == {k: v.tobytes() for k, v in tensors.items()}
        (out / f"{name}.safetensors").write_bytes(data)
        print(f"{out / name}.safetensors: {len(data)} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path("."), help="repository root")
    args = parser.parse_args()
    fixtures = args.root / "tests" / "fixtures" / "io"
    fixtures.mkdir(parents=True, exist_ok=True)
    write_reference(fixtures / "hf_reference.safetensors")
    write_corpus(args.root / "tests" / "fuzz" / "corpus" / "safetensors")


if __name__ == "__main__":
    main()
