"""Content hashing for cache keys: never key on identity, never silently.

:func:`hash_value` feeds a value's *content* into an xxh3-128 hasher: numpy arrays
by their raw buffer (zero copy when contiguous), containers recursively, functions
and classes by their code (not by the cell file they came from, so the same
helper hashes the same in every kernel), modules by name and version, and any
other picklable object by its pickle stream with large buffers hashed out of band.
A value that cannot be hashed raises :class:`UnhashableInput` naming it.
"""

from __future__ import annotations

import functools
import io
import marshal
import os
import pickle  # nosec B403  # only dumps, to hash; nothing is loaded here
import struct
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import CacheError
from .canonical import is_pandas, pandas_parts, reduce_state

__all__ = [
    "UnhashableInput",
    "ValueHasher",
    "hash_code",
    "hash_files",
    "hash_value",
    "module_version",
    "new_hasher",
]

#: Helpers followed through their globals at most this deep (a bound on the walk).
MAX_HELPER_DEPTH = 8
#: Containers are followed at most this deep; deeper parts are pickled.
MAX_CONTAINER_DEPTH = 64
#: Classes of these packages may be SDK/HTTP clients, keyed by their settings (:mod:`.clients`).
_CLIENT_MODULES = ("openai", "anthropic", "httpx")

#: Objects walked for one value at most; past it the value is unhashable (a bound on time:
#: a matplotlib animation reaches tens of thousands of objects, a graph with shared nodes more).
MAX_OBJECTS = 200_000

_SCALARS = (type(None), bool, int, float, complex, str, bytes)
# Exact types marshal writes by value (bool before int: marshal keeps them apart).
_MARSHALABLE = frozenset({type(None), bool, int, float, complex, str, bytes})
_FAST_MIN = 32
# Class attributes that are not the class's code: caches Python fills in later (copyreg's
# __slotnames__ on the first pickle, abc's registry), so keying on them changed the key.
_CLASS_BOOKKEEPING = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__doc__",
        "__qualname__",
        "__dataclass_fields__",
        "__slotnames__",
        "_abc_impl",
    }
)


class UnhashableInput(CacheError):
    """An input's content cannot be hashed (so it cannot be part of a key)."""

    def __init__(self, name: str, reason: str, variable: str = "") -> None:
        super().__init__(f"cannot hash {name}: {reason}")
        self.name = name
        self.reason = reason
        #: The notebook variable to leave out (``--ignore``), when known.
        self.variable = variable


def new_hasher() -> Any:
    """A fresh xxh3-128 hasher (imported lazily: ``import sci_ext`` stays light)."""
    import xxhash

    return xxhash.xxh3_128()


@functools.lru_cache(maxsize=512)
def module_version(module_name: str) -> str:
    """The installed version of the distribution providing ``module_name`` ('' if unknown).

    Looks only where the module is (see :mod:`.versions`): no scan of the environment.
    """
    from .versions import find_version

    try:
        return find_version(module_name.partition(".")[0])
    except Exception:  # a broken install must not break keying
        return ""


def _is_notebook_defined(obj: Any, main_names: frozenset[str]) -> bool:
    """Should ``obj`` (a function or class) be hashed by its code rather than by reference?

    Yes for the notebook's own code, for local functions and lambdas (their qualified
    name does not identify them), and for code from modules that no installed
    distribution versions (a ``helpers.py`` next to the notebook can change any time).
    """
    module = getattr(obj, "__module__", None)
    if module in main_names:
        return True
    if "<" in str(getattr(obj, "__qualname__", "")):
        return True
    return isinstance(module, str) and module_version(module) == ""


class ValueHasher:
    """Feeds values into one xxh3-128 hasher by content.

    ``main_modules`` names the modules whose functions and classes are hashed by
    code (the notebook's ``__main__``); everything else callable is hashed by
    module, qualified name and the module's version.
    """

    def __init__(
        self, main_modules: Iterable[str] = ("__main__",), ignore: Iterable[str] = (), code_only: bool = False
    ) -> None:
        self.h = new_hasher()
        #: Follow only the code of helpers, not the data they read (``cache_result``'s contract).
        self.code_only = code_only
        self.main_modules = frozenset(main_modules)
        self.ignore = frozenset(ignore)
        self._seen_code: set[int] = set()
        self._stack: set[int] = set()
        # Objects already walked (id -> (order, object), the object kept alive so its id is not
        # reused): a second visit is a back-reference, as in a pickle, so an object graph with
        # shared nodes is walked once per node, not once per path (which is exponential).
        self._memo: dict[int, tuple[int, Any]] = {}
        self._count = 0

    # -- public -----------------------------------------------------------
    def update(self, value: Any, label: str = "value") -> None:
        """Add ``value``'s content; ``label`` names it in errors.

        Whatever goes wrong while reading a value (an object whose attribute access raises)
        is :class:`UnhashableInput`: keying never raises into the user's cell.
        """
        try:
            self._value(value, label, 0, 0)
        except UnhashableInput:
            raise
        except RecursionError:
            raise UnhashableInput(label, "it is nested too deeply to key") from None
        except Exception as exc:
            raise UnhashableInput(label, f"reading it failed ({type(exc).__name__}: {exc})") from None

    def tag(self, text: str) -> None:
        """Add a structural marker (a name, a separator)."""
        self._tag(text)

    def digest(self) -> str:
        """The hex digest of everything added so far."""
        return str(self.h.hexdigest())

    # -- internals --------------------------------------------------------
    def _tag(self, text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        self.h.update(struct.pack("<Q", len(data)))
        self.h.update(data)

    def _bytes(self, data: Any) -> None:
        view = memoryview(data)
        self.h.update(struct.pack("<Q", view.nbytes))
        self.h.update(view)

    def _value(self, value: Any, label: str, depth: int, helper_depth: int) -> None:
        kind = type(value)
        if kind in _SCALARS:
            self._tag(kind.__name__)
            self._bytes(value if kind is bytes else repr(value).encode())
            return
        if depth > MAX_CONTAINER_DEPTH:
            self._pickled(value, label)
            return
        marker = id(value)
        if marker in self._stack:
            self._tag("<cycle>")
            return
        self._count += 1
        if self._count > MAX_OBJECTS:
            raise UnhashableInput(label, f"it reaches more than {MAX_OBJECTS} objects (too large to key)")
        if kind not in _LEAVES and not _is_leaf(value):
            seen = self._memo.get(marker)
            if seen is not None:
                self._tag(f"<ref {seen[0]}>")
                return
            self._memo[marker] = (len(self._memo), value)
        self._stack.add(marker)
        try:
            self._dispatch(value, label, depth, helper_depth)
        finally:
            self._stack.discard(marker)

    def _dispatch(self, value: Any, label: str, depth: int, helper_depth: int) -> None:
        kind = type(value)
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(value, numpy.ndarray):
            self._ndarray(value, label, depth, helper_depth)
            return
        if numpy is not None and isinstance(value, numpy.generic):
            self._tag(f"np.{value.dtype.str}")
            self._bytes(value.tobytes())
            return
        if kind in (list, tuple) and len(value) > _FAST_MIN and all(type(v) in _MARSHALABLE for v in value):
            # Long flat lists (prompts, labels, numbers): one marshal call instead of one step per item.
            # marshal version 2 writes no back-references, so equal content gives equal bytes.
            self._tag(f"flat-{kind.__name__}:{len(value)}")
            self._bytes(marshal.dumps(value, 2))
            return
        if kind in (list, tuple) or (isinstance(value, tuple) and hasattr(value, "_fields")):
            self._tag(f"{kind.__module__}.{kind.__qualname__}:{len(value)}")
            for i, item in enumerate(value):
                self._value(item, f"{label}[{i}]", depth + 1, helper_depth)
            return
        if kind is dict:
            self._tag(f"dict:{len(value)}")
            for k, v in value.items():
                self._value(k, f"{label} key", depth + 1, helper_depth)
                self._value(v, f"{label}[{k!r}]", depth + 1, helper_depth)
            return
        if kind in (set, frozenset):
            # Element order depends on hash seeds: hash each element alone, sort the digests.
            digests = []
            for item in value:
                sub = ValueHasher(self.main_modules, self.ignore, self.code_only)
                sub._value(item, f"{label} element", depth + 1, helper_depth)
                digests.append(sub.digest())
            self._tag(f"{kind.__name__}:" + ",".join(sorted(digests)))
            return
        if isinstance(value, types.ModuleType):
            version = module_version(value.__name__)
            self._tag(f"module:{value.__name__}:{version}")
            if version == "":
                self._local_module(value, label, helper_depth)
            return
        wrapped = _library_wrapped(value, self.main_modules)
        if wrapped is not None:
            self._decorated(value, wrapped, label, depth, helper_depth)
            return
        if isinstance(value, functools.partial):
            # pickle would name the function only: an edited notebook function must change the key.
            self._tag("partial")
            self._value(value.func, f"{label}.func", depth + 1, helper_depth)
            self._value(value.args, f"{label}.args", depth + 1, helper_depth)
            self._value(value.keywords, f"{label}.keywords", depth + 1, helper_depth)
            return
        if isinstance(value, (types.FunctionType, type)) and _is_notebook_defined(value, self.main_modules):
            if isinstance(value, type):
                self._class(value, label, helper_depth)
            else:
                self._function(value, label, helper_depth)
            return
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type, types.MethodType)) and not (
            isinstance(value, types.MethodType)
        ):
            module = getattr(value, "__module__", None) or ""
            self._tag(f"ref:{module}:{getattr(value, '__qualname__', '')}:{module_version(module)}")
            return
        if isinstance(value, types.MethodType):
            self._tag("method")
            self._value(value.__func__, f"{label}.__func__", depth + 1, helper_depth)
            self._value(value.__self__, f"{label}.__self__", depth + 1, helper_depth)
            return
        if isinstance(value, Path):
            self._tag(f"path:{value}")
            return
        if kind.__name__ == "NpzFile" and kind.__module__.startswith("numpy.lib"):  # np.load's lazy archive
            self._npz(value, label)
            return
        if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), (str, bytes)):
            # An open file (inside a lazy loader such as np.load's NpzFile): its content is the file's.
            self._file_handle(value)
            return
        if isinstance(value, (dict, list)) and kind not in (dict, list):
            # A subclass (sklearn's Bunch, OrderedDict, UserList-likes): its items, in order, and its
            # public fields, read directly (its __reduce__/__setstate__ may drop or add private ones).
            self._tag(f"{kind.__module__}.{kind.__qualname__}:{len(value)}")
            items = list(dict.items(value)) if isinstance(value, dict) else list(list.__iter__(value))
            self._value(items, f"{label} items", depth + 1, helper_depth)
            fields = _instance_fields(value)
            fields.pop("_mask", None)
            self._value(fields, f"{label} fields", depth + 1, helper_depth)
            return
        if is_pandas(value):
            for part_label, part in pandas_parts(value, label):
                self._tag(part_label.removeprefix(label))
                self._value(part, part_label, depth + 1, helper_depth)
            return
        self._object(value, label, depth, helper_depth)

    def _decorated(self, value: Any, wrapped: Any, label: str, depth: int, helper_depth: int) -> None:
        """A library decorator's wrapper (``functools.cache``, ``cache_result``, ``retry_with_backoff``).

        Keyed by the decorator (module, name, version), the plain settings in the
        wrapper's closure and the wrapped function's content.  Pickling the wrapper
        would name the notebook function only (an edit would be a stale hit), and its
        own state (locks, memo tables) says nothing about the results.
        """
        if isinstance(value, types.FunctionType):
            module = str(value.__globals__.get("__name__", ""))
            self._tag(f"decorated:{module}:{value.__code__.co_name}:{module_version(module)}")
            for name, cell in zip(value.__code__.co_freevars, value.__closure__ or (), strict=True):
                try:
                    content = cell.cell_contents
                except ValueError:  # an empty cell: not bound yet
                    continue
                if type(content) in _SCALARS:
                    self._tag(f"setting:{name}")
                    self._value(content, f"{label} setting {name}", depth + 1, helper_depth)
        else:
            kind = type(value)
            self._tag(f"decorated:{kind.__module__}:{kind.__qualname__}:{module_version(kind.__module__)}")
        self._value(wrapped, f"{label} (decorated)", depth + 1, helper_depth)

    def _local_module(self, module: types.ModuleType, label: str, helper_depth: int) -> None:
        """A module no distribution versions (``config.py`` beside the notebook): its source and settings.

        Its file may be edited and its plain attributes (``config.lr = 0.1``) changed at any
        time, so both are part of the key; functions and classes are covered by their code.
        """
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.endswith(".py") and os.path.isfile(path):
            self._tag("source")
            self._bytes(_file_bytes(path, os.stat(path).st_mtime_ns))
        for attr in sorted(vars(module)):
            item = vars(module)[attr]
            if attr.startswith("_") or type(item) not in (*_SCALARS, list, tuple, dict, set, frozenset):
                continue
            self._tag(f"attr:{attr}")
            try:
                self._value(item, f"{label}.{attr}", 1, helper_depth)
            except UnhashableInput:
                self._tag("<unhashable>")

    def _npz(self, value: Any, label: str) -> None:
        """``np.load``'s lazy NpzFile: what it reads is its file (by path, size, mtime), its member
        names and its options; its attributes (a zip reader, a bag whose attribute lookups read
        arrays) say nothing more and cannot be walked."""
        fid = getattr(value, "fid", None)
        if fid is None or getattr(fid, "closed", True) or not isinstance(getattr(fid, "name", None), (str, bytes)):
            raise UnhashableInput(label, "an NpzFile that is closed or reads a file object, not a file")
        self._tag(f"npz:{sorted(value.files)}:{value.allow_pickle}:{sorted((value.pickle_kwargs or {}).items())}")
        self._file_handle(fid)

    def _file_handle(self, handle: Any) -> None:
        """A file object by its file: path, size, mtime, and the bytes of a small, recently written one."""
        import time

        path = os.path.abspath(os.fsdecode(handle.name))
        self._tag(f"file:{path}")
        try:
            st = os.stat(path)
        except OSError:
            self._tag("<gone>")
            return
        self._tag(f"{st.st_size}:{st.st_mtime_ns}")
        if st.st_size <= 1 << 20 and time.time() - st.st_mtime_ns / 1e9 < 2.0:
            # An mtime this fresh may not change on the next write in the same tick: the bytes decide.
            self._bytes(_file_bytes(path, st.st_mtime_ns))

    def _ndarray(self, value: Any, label: str, depth: int, helper_depth: int) -> None:
        import numpy

        kind = type(value)
        if kind is not numpy.ndarray:
            # A subclass (MaskedArray, matrix, memmap): never call its own methods, which may
            # change it (MaskedArray.view reshapes the mask it shares with the original: issue 25's
            # GridSearchCV failure).  Its data through ndarray's methods, its fields from its dict.
            self._tag(f"subclass:{kind.__module__}.{kind.__qualname__}")
            fields = _instance_fields(value)
            for attr in sorted(fields):
                self._tag(f"field:{attr}")
                self._value(fields[attr], f"{label}.{attr}", depth + 1, helper_depth)
            value = numpy.ndarray.view(value, numpy.ndarray)
        self._tag(f"ndarray:{value.dtype.str}:{value.shape}")
        if value.dtype.hasobject:
            for i, item in enumerate(value.ravel(order="K")):
                self._value(item, f"{label}[{i}]", depth + 1, helper_depth)
            return
        if value.dtype.fields is not None or value.dtype.kind == "V":
            self._tag(repr(value.dtype.descr))
        data = value if value.flags.c_contiguous else numpy.ascontiguousarray(value)
        # The raw buffer, no copy: this is what makes hashing run at memory speed.
        self._bytes(data.reshape(-1).view(numpy.uint8) if data.ndim else data.tobytes())

    def _function(self, func: types.FunctionType, label: str, helper_depth: int) -> None:
        self._tag(f"function:{func.__qualname__}")
        self._code(func.__code__)
        self._value(func.__defaults__, f"{label} defaults", 1, helper_depth)
        self._value(func.__kwdefaults__, f"{label} keyword defaults", 1, helper_depth)
        for i, cell in enumerate(func.__closure__ or ()):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell: not bound yet
                self._tag("<empty cell>")
                continue
            if self.code_only and not isinstance(content, (types.FunctionType, type)):
                self._tag(f"closure:{func.__code__.co_freevars[i]}")
                continue
            self._value(content, f"{label} closure variable {func.__code__.co_freevars[i]}", 1, helper_depth)
        self._globals_of(func.__code__, func.__globals__, label, helper_depth)

    def _class(self, cls: type, label: str, helper_depth: int) -> None:
        self._tag(f"class:{cls.__qualname__}")
        for base in cls.__bases__:
            self._value(base, f"{label} base", 1, helper_depth)
        for attr, member in sorted(vars(cls).items()):
            if attr in _CLASS_BOOKKEEPING:
                continue
            func = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if isinstance(member, property):
                for part in (member.fget, member.fset, member.fdel):
                    if part is not None:
                        self._tag(attr)
                        self._value(part, f"{label}.{attr}", 1, helper_depth)
                continue
            self._tag(attr)
            try:
                self._value(func, f"{label}.{attr}", 1, helper_depth)
            except UnhashableInput:
                self._tag("<unhashable attribute>")

    def _code(self, code: types.CodeType) -> None:
        # Structure only: co_filename and line numbers differ between kernels and runs.
        self._tag(f"code:{code.co_name}:{code.co_argcount}:{code.co_kwonlyargcount}:{code.co_flags}")
        self._bytes(code.co_code)
        self._tag(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)))
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self._code(const)
            elif isinstance(const, frozenset):
                # Set order follows string hash seeds, which differ between kernels.
                self._tag("frozenset:" + repr(sorted(map(repr, const))))
            else:
                self._tag(f"{type(const).__name__}:{const!r}")

    def _globals_of(self, code: types.CodeType, namespace: dict[str, Any], label: str, helper_depth: int) -> None:
        """Hash the globals a notebook function reads: helpers it calls and values it uses."""
        if helper_depth >= MAX_HELPER_DEPTH:
            self._tag("<helper depth bound>")
            return
        for name in sorted(_global_names(code)):
            if name in self.ignore or name not in namespace:
                continue
            value = namespace[name]
            if self.code_only and not isinstance(value, (types.FunctionType, type, types.ModuleType)):
                continue
            if id(value) in self._seen_code:
                self._tag(f"global:{name}:<seen>")
                continue
            if isinstance(value, (types.FunctionType, type)):
                self._seen_code.add(id(value))
            self._tag(f"global:{name}")
            try:
                self._value(value, f"global {name!r} (read by {label})", 1, helper_depth + 1)
            except UnhashableInput as exc:
                raise UnhashableInput(exc.name, exc.reason, variable=exc.variable or name) from None

    def _object(self, value: Any, label: str, depth: int, helper_depth: int) -> None:
        kind = type(value)
        if kind.__module__.startswith(_CLIENT_MODULES):
            from .clients import spec_of

            spec = spec_of(value)
            if spec is not None:  # an SDK/HTTP client: keyed by its settings, as the cache stores it
                self._tag("client")
                fields = (spec.module, spec.name, spec.base_url, spec.timeout, spec.max_retries, spec.headers)
                self._value((*fields, spec.extra), label, depth + 1, helper_depth)
                return
        self._tag("object")
        self._value(kind, f"type of {label}", depth + 1, helper_depth)
        if _plain_state(value):
            # Field by field, as containers are: a pickled set attribute would follow the
            # process's hash seed, and the key would change with every kernel.
            self._tag("state")
            self._value(vars(value), f"{label}.__dict__", depth + 1, helper_depth)
            return
        state = _dict_state(value)
        if state is not None:
            # Its own __getstate__ (scikit-learn estimators) is user code that may do anything: the
            # instance dict is read directly, which calls nothing.  Only when that dict holds
            # something unhashable (a lock __getstate__ would drop) does pickle's view count.
            sub = ValueHasher(self.main_modules, self.ignore, self.code_only)
            sub._memo, sub._count, sub._stack = self._memo, self._count, self._stack
            try:
                sub._value(state, f"{label}.__dict__", depth + 1, helper_depth)
            except Exception:  # noqa: S110  # nosec B110  # pickle's view of it decides below
                pass
            else:
                self._count = sub._count
                self._tag("state " + sub.digest())
                return
        reduced = reduce_state(value)
        if reduced is not None:
            # What pickle would store (estimators, dataclasses), walked by content: a pickle
            # stream depends on which objects happen to be shared, so a restored copy differed.
            _cls, args, state = reduced
            self._tag(f"reduced:{len(args)}")
            self._value(args, f"{label} arguments", depth + 1, helper_depth)
            for attr in sorted(state):
                self._tag(f"attr:{attr}")
                self._value(state[attr], f"{label}.{attr}", depth + 1, helper_depth)
            return
        if not self._reduced(value, label, depth, helper_depth):
            self._pickled(value, label)

    def _reduced(self, value: Any, label: str, depth: int, helper_depth: int) -> bool:
        """Walk what a library type's own ``__reduce_ex__`` returns (a KDTree, a RandomState).

        A pickle stream of it is not canonical (small tuples shared in the original are
        separate after a restore, so the memo differs); its parts, walked by content, are.
        False when it has no usable reduction (then its pickle is hashed, or it is unhashable).
        """
        try:
            reduced = value.__reduce_ex__(5)
        except Exception:
            return False
        if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6 or not callable(reduced[0]):
            return False
        parts = list(reduced)
        for i in (3, 4):  # list items and dict items come as iterators
            if len(parts) > i and parts[i] is not None:
                parts[i] = list(parts[i])
        self._tag(f"reduce:{len(parts)}")
        for i, part in enumerate(parts):
            self._value(part, f"{label} (reduced part {i})", depth + 1, helper_depth)
        return True

    def _pickled(self, value: Any, label: str) -> None:
        buffers: list[pickle.PickleBuffer] = []
        try:
            try:
                stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
            except (pickle.PicklingError, TypeError, AttributeError):
                import cloudpickle

                buffers.clear()
                stream = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        except Exception as exc:
            raise UnhashableInput(label, f"{type(value).__name__} cannot be pickled ({exc})") from None
        self._bytes(stream)
        for buf in buffers:
            try:
                self._bytes(buf.raw())
            except BufferError:
                self._bytes(bytes(memoryview(buf)))


@functools.lru_cache(maxsize=64)
def _file_bytes(path: str, mtime_ns: int) -> bytes:
    """A source file's bytes (cached until it changes)."""
    with open(path, "rb") as handle:
        return handle.read()


_DEFAULT_REDUCE = (object.__reduce__, object.__reduce_ex__, getattr(object, "__getstate__", None))
#: Types hashed as leaves (by content, never as a back-reference): a restored copy of a value
#: may share them differently (a pandas object's parts are built afresh on every access).
_LEAVES = frozenset({tuple, frozenset})


def _is_leaf(value: Any) -> bool:
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic, numpy.dtype)):
        return True
    return is_pandas(value)


def _instance_fields(value: Any) -> dict[str, Any]:
    """The public entries of an object's instance dict, read without calling its methods."""
    try:
        state = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return {}
    if not isinstance(state, dict):
        return {}
    # MaskedArray keeps its mask as _mask; other private fields are caches and flags.
    return {k: v for k, v in state.items() if isinstance(k, str) and (not k.startswith("_") or k == "_mask")}


def _dict_state(value: Any) -> dict[str, Any] | None:
    """The instance dict of an object that pickle rebuilds as class + dict (default ``__reduce_ex__``).

    Read with ``object.__getattribute__``: nothing the object defines runs.
    """
    kind = type(value)
    if "__slots__" in vars(kind) or kind.__reduce_ex__ is not object.__reduce_ex__:
        return None
    if kind.__reduce__ is not object.__reduce__:
        return None
    try:
        state = object.__getattribute__(value, "__dict__")
    except AttributeError:
        return None
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        return None
    return state


def _plain_state(value: Any) -> bool:
    """Is ``value`` an instance whose whole pickled state is its ``__dict__`` (no slots, no custom reduce)?"""
    kind = type(value)
    try:
        state = vars(value)
    except TypeError:
        return False
    if not isinstance(state, dict) or hasattr(kind, "__slots__"):
        return False
    hooks = (kind.__reduce__, kind.__reduce_ex__, getattr(kind, "__getstate__", None))
    return all(hook is default for hook, default in zip(hooks, _DEFAULT_REDUCE, strict=True)) and not hasattr(
        kind, "__setstate__"
    )


def _library_wrapped(value: Any, main_names: frozenset[str]) -> Any:
    """The function a versioned library's decorator wraps (``__wrapped__``), else None.

    Decorators defined in the notebook (or an unversioned local module) are hashed
    as ordinary notebook code instead: their own code can change the result.
    """
    if isinstance(value, (type, types.MethodType)) or not callable(value):
        return None
    try:
        # functools.update_wrapper sets it in the instance dictionary (functions, lru_cache objects).
        wrapped = vars(value).get("__wrapped__")
    except TypeError:  # no instance dictionary
        return None
    if wrapped is None or not callable(wrapped):
        return None
    if isinstance(value, types.FunctionType):
        module = str(value.__globals__.get("__name__", ""))
    else:
        module = type(value).__module__
    if module in main_names or module_version(module) == "":
        return None
    return wrapped


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def hash_value(value: Any, label: str = "value", main_modules: Iterable[str] = ("__main__",)) -> str:
    """The xxh3-128 hex digest of ``value``'s content (see :class:`ValueHasher`).

    >>> hash_value([1, 2, 3]) == hash_value([1, 2, 3])
    True
    >>> hash_value([1, 2, 3]) == hash_value([1, 2, 4])
    False
    """
    hasher = ValueHasher(main_modules)
    hasher.update(value, label)
    return hasher.digest()


def hash_code(func: Callable[..., Any], with_values: bool = False) -> str:
    """The digest of a function's code and of the notebook helpers it calls.

    With ``with_values`` the data it reads (globals, closure variables) counts too.
    """
    module = getattr(func, "__module__", None) or "__main__"
    hasher = ValueHasher({module, "__main__"}, code_only=not with_values)
    target = getattr(func, "__wrapped__", func)
    if isinstance(target, types.FunctionType):
        hasher._function(target, getattr(target, "__qualname__", "function"), 0)
    else:
        hasher.update(target, "function")
    return hasher.digest()


def hash_files(patterns: Iterable[str], root: Path | None = None) -> str:
    """The digest of every file matched by ``patterns`` (globs relative to ``root``).

    A pattern matching nothing is keyed as such, so creating a file later is a miss.
    """
    base = root or Path.cwd()
    hasher = ValueHasher()
    for pattern in patterns:
        hasher.tag(f"glob:{pattern}")
        path = Path(pattern).expanduser()
        matches = sorted(
            Path(p)
            for p in (
                [path]
                if path.is_absolute() and not any(c in pattern for c in "*?[")
                else (path.parent.glob(path.name) if path.is_absolute() else base.glob(pattern))
            )
            if Path(p).is_file()
        )
        if not matches:
            hasher.tag("<no match>")
        for match in matches:
            hasher.tag(str(match.relative_to(base)) if not path.is_absolute() else str(match))
            with open(match, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    hasher.h.update(chunk)
    return hasher.digest()
