"""Keras model configs (``config.json`` of ``.keras``, HDF5 ``model_config``) against an
allowlist: standard layer, model and training-object classes from Keras itself; functions only
as activations, losses and metrics; argument values that are data, never file paths or URLs.

Findings: ``Lambda`` and ``__lambda__`` (embedded Python), objects from modules outside Keras
(CVE-2025-1550), Keras functions used as layers or values outside activations/losses/metrics
(``keras.utils.get_file``, ``keras.models.load_model``: CVE-2025-8747, CVE-2025-9906), layers
that load external models (``TFSMLayer``) or run other frameworks' code (``TorchModuleWrapper``,
whose ``torch.save`` payload is decoded and scanned too, ``JaxLayer``/``FlaxLayer``), lookup
layers whose vocabulary is a file path (keras-team/keras#21751), custom registered objects.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from typing import Any

from mlsecops_provider.core.scan.formats import Finding


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DIMS = ("1D", "2D", "3D")
LAYERS = _words(
    "InputLayer Input Dense EinsumDense Einsum Embedding Flatten Reshape Permute RepeatVector "
    "Dropout GaussianNoise GaussianDropout AlphaDropout ActivityRegularization Activation ReLU "
    "LeakyReLU PReLU ELU Softmax Masking Identity BatchNormalization LayerNormalization "
    "GroupNormalization UnitNormalization RMSNormalization SpectralNormalization LSTM GRU "
    "SimpleRNN LSTMCell GRUCell SimpleRNNCell StackedRNNCells RNN Bidirectional TimeDistributed "
    "Attention AdditiveAttention MultiHeadAttention GroupedQueryAttention Add Subtract Multiply "
    "Average Maximum Minimum Concatenate Dot Normalization Rescaling Resizing CenterCrop "
    "RandomFlip RandomRotation RandomZoom RandomContrast RandomTranslation RandomCrop "
    "RandomBrightness RandomGrayscale RandomHue RandomSaturation RandomSharpness AutoContrast "
    "Solarization Equalization MixUp CutMix RandAugment AugMix RandomErasing RandomPerspective "
    "RandomColorJitter RandomElasticTransform RandomInvert RandomPosterization RandomShear "
    "RandomGaussianBlur MaxNumBoundingBoxes CategoryEncoding Hashing HashedCrossing "
    "Discretization StringLookup IntegerLookup TextVectorization Pipeline MelSpectrogram "
    "STFTSpectrogram "
    "Sequential Functional Model DTypePolicy FloatDTypePolicy QuantizedDTypePolicy "
    "QuantizedFloat8DTypePolicy Policy"
    + "".join(
        f" Conv{d} Conv{d}Transpose SeparableConv{d} DepthwiseConv{d} MaxPooling{d} "
        f"AveragePooling{d} GlobalMaxPooling{d} GlobalAveragePooling{d} ZeroPadding{d} "
        f"Cropping{d} UpSampling{d} SpatialDropout{d} ConvLSTM{d} AdaptiveAveragePooling{d} "
        f"AdaptiveMaxPooling{d} MaxPool{d} AvgPool{d} GlobalMaxPool{d} GlobalAvgPool{d} "
        f"Convolution{d} Convolution{d}Transpose SeparableConvolution{d}"
        for d in _DIMS
    )
)
TRAINING_OBJECTS = _words(
    "GlorotUniform GlorotNormal HeUniform HeNormal LecunUniform LecunNormal RandomUniform "
    "RandomNormal TruncatedNormal Zeros Ones Constant Identity IdentityInitializer Orthogonal "
    "VarianceScaling STFTInitializer L1 L2 L1L2 OrthogonalRegularizer MaxNorm MinMaxNorm NonNeg "
    "UnitNorm Adam AdamW SGD RMSprop Adagrad Adadelta Adamax Adafactor Nadam Ftrl Lion Lamb Muon "
    "LossScaleOptimizer ExponentialDecay PiecewiseConstantDecay PolynomialDecay "
    "InverseTimeDecay CosineDecay CosineDecayRestarts MeanSquaredError MeanAbsoluteError "
    "MeanAbsolutePercentageError MeanSquaredLogarithmicError BinaryCrossentropy "
    "BinaryFocalCrossentropy CategoricalCrossentropy CategoricalFocalCrossentropy "
    "SparseCategoricalCrossentropy Hinge SquaredHinge CategoricalHinge Huber LogCosh Poisson "
    "KLDivergence CosineSimilarity Dice Tversky Circle CTC Accuracy BinaryAccuracy "
    "CategoricalAccuracy SparseCategoricalAccuracy TopKCategoricalAccuracy "
    "SparseTopKCategoricalAccuracy AUC Precision Recall F1Score FBetaScore MeanIoU IoU "
    "BinaryIoU OneHotIoU OneHotMeanIoU R2Score Mean Sum MeanMetricWrapper RootMeanSquaredError "
    "TruePositives TrueNegatives FalsePositives FalseNegatives PrecisionAtRecall "
    "RecallAtPrecision SensitivityAtSpecificity SpecificityAtSensitivity LogCoshError "
    "__tensor__ __numpy__ __bytes__ __ellipsis__ __slice__ __tuple__ __keras_tensor__ Variable"
)
ALLOWED_CLASSES = LAYERS | TRAINING_OBJECTS
FUNCTION_MODULES = ("activations", "losses", "metrics")
_FUNCTION_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_NOT_FUNCTIONS = _words("get deserialize serialize get_file load_model")
EXTERNAL = {
    "TFSMLayer": "loads an external TensorFlow SavedModel from a path at load time",
    "TorchModuleWrapper": "carries a torch.save payload that Keras loads with torch.load",
    "JaxLayer": "wraps JAX functions (code) as a layer",
    "FlaxLayer": "wraps a Flax module (code) as a layer",
    "Lambda": "Lambda layer: runs embedded Python code",
    "__lambda__": "serialized Python lambda (bytecode)",
}
PATH_KEYS = _words(
    "vocabulary filepath file_path path file filename fname origin url uri cache_dir "
    "cache_subdir idf_weights proto spm_proto merges vocabulary_file model_path"
)
_PATHLIKE = re.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://|file:|/|~|\\\\|[A-Za-z]:[\\/])|.*\.\.[\\/]")


def is_keras_module(module: str) -> bool:
    return module.split(".")[0] in ("keras", "tf_keras") or module.startswith("tensorflow.keras")


def looks_like_config(config: Any) -> bool:
    return isinstance(config, dict) and {"class_name", "config"} <= set(config)


def keras_findings(
    config: Any, source: str, scan_payload: Callable[[bytes, str], None] | None = None
) -> list[Finding]:
    """Every object of a Keras config against the allowlist (see the module docstring)."""
    found: dict[tuple[str, str], Finding] = {}

    def flag(reason: str, subject: str | None = None, severity: str = "high") -> None:
        found.setdefault((subject or "", reason), Finding(source, severity, reason,
                                                          global_name=subject))  # fmt: skip

    for node, parent_key in _objects(config):
        name, module = node.get("class_name"), node.get("module")
        subject = f"{module}.{name}" if isinstance(module, str) else str(name)
        if not isinstance(name, str):
            continue
        if isinstance(module, str) and not is_keras_module(module):
            flag(f"Keras object {name!r} from module {module!r} outside Keras", subject)
        elif name == "function":
            problem = _function_problem(node, module, parent_key)
            if problem:
                flag(problem, f"{module}.{node.get('config')}", "critical")
        elif name in EXTERNAL:
            flag(f"Keras {name}: {EXTERNAL[name]}", subject, "critical")
            if name == "TorchModuleWrapper" and scan_payload:
                _scan_embedded(node, source, scan_payload)
        elif name not in ALLOWED_CLASSES:
            flag(f"Keras class {name!r} is not on the allowlist of standard Keras objects", subject)
        registered = node.get("registered_name")
        if isinstance(registered, str) and registered not in (name, "function"):
            flag(f"custom registered Keras object {registered!r}", subject)
        for key, value, direct in _arguments(node):
            if (direct and key in PATH_KEYS and value) or _PATHLIKE.match(value):
                flag(f"Keras {name} argument {key}={value[:80]!r} is a file path or URL", subject)
    return list(found.values())


def _function_problem(node: dict[str, Any], module: Any, parent_key: str) -> str | None:
    fname = node.get("config")
    where = str(module or "").split(".")
    if parent_key in ("layers", "layer"):
        return f"a Keras function ({module}.{fname}) is used as a layer"
    if not isinstance(fname, str) or not _FUNCTION_NAME.match(fname) or fname in _NOT_FUNCTIONS:
        return f"Keras function {fname!r} is not an activation, loss or metric"
    if not (is_keras_module(str(module or "")) and set(where) & set(FUNCTION_MODULES)):
        return f"function {module}.{fname} is not from Keras activations, losses or metrics"
    return None


def _objects(config: Any) -> Iterator[tuple[dict[str, Any], str]]:
    stack: list[tuple[Any, str]] = [(config, "")]
    while stack:
        item, key = stack.pop()
        if isinstance(item, dict):
            if "class_name" in item:
                yield item, key
            stack.extend((value, str(k)) for k, value in item.items())
        elif isinstance(item, list):
            stack.extend((value, key) for value in item)


def _arguments(node: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """String arguments of an object (list items are data, e.g. vocabulary tokens, never
    paths Keras opens, so they are not checked)."""
    config = node.get("config")
    for key, value in config.items() if isinstance(config, dict) else ():
        if isinstance(value, str):
            yield str(key), value, True


def _scan_embedded(node: dict[str, Any], source: str, scan: Callable[[bytes, str], None]) -> None:
    """Decode the serialized torch module of a TorchModuleWrapper and scan it."""
    for inner, _ in _objects(node.get("config")):
        if inner.get("class_name") == "__bytes__":
            value = (inner.get("config") or {}).get("value")
            if isinstance(value, str):
                scan(_decode(value), f"{source}#TorchModuleWrapper")
    value = (node.get("config") or {}).get("module")
    if isinstance(value, str):
        scan(_decode(value), f"{source}#TorchModuleWrapper")


def _decode(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value.encode("latin-1", "replace")
