"""Latency lookup tables: every choice of every searchable layer measured in isolation, then summed.

For a layer-wise space (``mbv2``, ``shufflenet``) each gene picks one block for one layer, and
every choice of a layer maps the same input shape to the same output shape. So the latency of
a network is approximately the sum of its parts measured alone at their real input shapes: the
fixed stem, one entry per searchable layer (the chosen block; 0 for the identity) and the
fixed tail (head, pooling, classifier). This is the lookup table of ProxylessNAS (Cai et al.,
ICLR 2019) and FBNet (Wu et al., CVPR 2019). Each part measured alone pays the runtime's
per-call overhead once where the whole network pays it once, so the table also measures a
no-op model at the input (the ``call`` entry; ~5 us with ONNX Runtime) and subtracts it for
every part but one. It misses what happens across part boundaries (operator fusion, cache
reuse); the ``slimforge lut eval`` benchmark (:mod:`slimforge.hardware.lut_eval`) measures how
far off it is.

The table is a CSV whose header comment lines (``# key: value``) hold the space and the
measurement conditions, so a table is never used under other conditions unknowingly::

    # format: slimforge.lut/1
    # space: mbv2
    # space_options: {"resolution": 32}
    # device: local-cpu
    ...
    part,layer,choice,token,input_shape,latency_ms,latency_ms_iqr,latency_ms_min,num_runs,stable
    call,,,call,1x3x32x32,0.005,0.0003,0.0048,9000,true
    stem,,,stem,1x3x32x32,0.41,0.02,0.39,310,true
    layer,0,0,k3e3,1x16x32x32,0.52,0.03,0.50,280,true
"""

from __future__ import annotations

from slimforge.hardware._lut_build import (
    CALIBRATION_FORMS,
    LUT_PROTOCOL,
    build_lut,
    calibrate_lut,
    calibration_genomes,
    fit_calibration,
    load_average,
)
from slimforge.hardware._lut_parts import LayerwiseParts, split_layerwise
from slimforge.hardware._lut_table import (
    LUT_FORMAT,
    STATISTICS,
    LatencyTable,
    LutEntry,
    LutError,
    read_lut,
    space_from_table,
)

__all__ = [
    "CALIBRATION_FORMS",
    "LUT_FORMAT",
    "LUT_PROTOCOL",
    "STATISTICS",
    "LatencyTable",
    "LayerwiseParts",
    "LutEntry",
    "LutError",
    "build_lut",
    "calibrate_lut",
    "calibration_genomes",
    "fit_calibration",
    "load_average",
    "read_lut",
    "space_from_table",
    "split_layerwise",
]
