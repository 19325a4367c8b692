"""The cache's building blocks, in-process: content hashing, cell analysis, entry format, stores."""

from __future__ import annotations

import os
import stat
import time
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sci_ext.core.cache import stats
from sci_ext.core.cache.keys import UnhashableInput, ValueHasher, hash_code, hash_files, hash_value, module_version
from sci_ext.core.cache.layered import LayeredStore, get_disk_store
from sci_ext.core.cache.serialize import CorruptEntry, pack, read_header, unpack
from sci_ext.core.cache.store import DiskStore, EntryInfo, MemoryStore, RedisStore, ensure_private_dir, redact_url
from sci_ext.core.errors import CacheError
from sci_ext.kernel.cellcache.analysis import analyze, normalize

# -- hashing -----------------------------------------------------------------


def test_hash_is_by_content_not_identity():
    a, b = np.arange(10.0), np.arange(10.0)
    assert a is not b and hash_value(a) == hash_value(b)
    b[3] = -1
    assert hash_value(a) != hash_value(b)
    assert hash_value(np.arange(10.0)) != hash_value(np.arange(10))  # dtype is content
    assert hash_value(np.zeros((2, 3))) != hash_value(np.zeros((3, 2)))  # so is shape
    f = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    assert hash_value(f) == hash_value(np.ascontiguousarray(f))  # layout is not
    assert hash_value({"a": 1, "b": [1, 2]}) != hash_value({"a": 1, "b": [1, 3]})
    assert hash_value({1, 2, 3}) == hash_value({3, 2, 1})
    assert hash_value(np.float64(1.5)) != hash_value(1.5)
    assert hash_value(np.array([object(), 1], dtype=object)[1:]) == hash_value(np.array([1], dtype=object))


def test_cycles_and_objects_hash_without_recursing_forever():
    lst: list = [1]
    lst.append(lst)
    assert hash_value(lst) == hash_value(lst)

    class Point:
        def __init__(self, x):
            self.x = x

    assert hash_value(Point(1), main_modules={__name__}) != hash_value(Point(2), main_modules={__name__})


def test_unhashable_value_names_it():
    import threading

    with pytest.raises(UnhashableInput, match="cannot hash client") as info:
        hash_value({"lock": threading.Lock()}, label="client")
    assert isinstance(info.value, CacheError)


def _make_helper(scale):
    ns = {"__name__": "__main__", "SCALE": scale}
    exec("def inner(v):\n    return v * SCALE\ndef helper(v):\n    return inner(v) + 1", ns)
    return ns


def test_functions_hash_by_code_and_the_globals_they_read():
    one, two = _make_helper(2), _make_helper(2)
    assert hash_code(one["helper"]) == hash_code(two["helper"])  # same code, different objects
    three = _make_helper(3)
    assert hash_code(one["helper"], with_values=True) != hash_code(three["helper"], with_values=True)
    assert hash_code(one["helper"]) == hash_code(three["helper"])  # code only: data is the caller's business
    exec("def inner(v):\n    return v * SCALE * 2", two)
    assert hash_code(one["helper"]) != hash_code(two["helper"])  # an edited helper


def test_helper_reading_an_unhashable_global_names_that_global():
    import threading

    ns = {"__name__": "__main__", "client": threading.Lock()}
    exec("def call():\n    return client", ns)
    hasher = ValueHasher()
    with pytest.raises(UnhashableInput) as info:
        hasher.update(ns["call"], "input 'call'")
    assert info.value.variable == "client"


def test_modules_and_library_functions_hash_by_name_and_version():
    assert hash_value(np) == hash_value(np)
    assert hash_value(np.mean) != hash_value(np.median)
    assert module_version("numpy") == np.__version__
    assert module_version("itertools").startswith("stdlib-")
    assert module_version("surely_not_a_module_xyz") == ""
    assert hash_value(types.SimpleNamespace(a=1)) != hash_value(types.SimpleNamespace(a=2))


def test_hash_files(tmp_path):
    (tmp_path / "a.txt").write_text("1")
    first = hash_files(["*.txt"], tmp_path)
    (tmp_path / "a.txt").write_text("2")
    assert hash_files(["*.txt"], tmp_path) != first
    empty = hash_files(["*.csv"], tmp_path)
    (tmp_path / "b.csv").write_text("")
    assert hash_files(["*.csv"], tmp_path) != empty  # a file appearing is a change
    assert hash_files([str(tmp_path / "a.txt")]) != hash_files([str(tmp_path / "b.csv")])


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)


def _same(a, b) -> bool:
    return type(a) is type(b) and repr(a) == repr(b)


@settings(max_examples=200, deadline=None)
@given(values, values)
def test_property_different_values_never_share_a_hash(a, b):
    if _same(a, b):
        assert hash_value(a) == hash_value(b)
    else:
        assert hash_value(a) != hash_value(b)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, width=32), min_size=1, max_size=50),
    st.integers(0, 49),
    st.floats(allow_nan=False, width=32),
)
def test_property_any_changed_array_element_changes_the_hash(items, index, new):
    a = np.array(items, dtype=np.float32)
    b = a.copy()
    b[index % len(b)] = new
    if a.tobytes() == b.tobytes():
        assert hash_value(a) == hash_value(b)
    else:
        assert hash_value(a) != hash_value(b)


# -- cell analysis -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "inputs", "outputs"),
    [
        ("x = x + 1", ["x"], ["x"]),
        ("x += 1", ["x"], ["x"]),
        ("y = 1\nz = y", [], ["y", "z"]),
        ("import numpy as np\nimport os.path", [], ["np", "os"]),
        ("for i, (a, b) in enumerate(pairs):\n    s = a", ["enumerate", "pairs"], ["a", "b", "i", "s"]),
        ("with open(p) as fh:\n    t = fh.read()", ["open", "p"], ["fh", "t"]),
        (
            "def f(v=dflt):\n    global g\n    g = v + h\nclass C(Base):\n    k = q",
            ["Base", "dflt", "h", "q"],
            ["C", "f", "g"],
        ),
        ("if (n := len(xs)) > 1:\n    m = n", ["len", "xs"], ["m", "n"]),
        ("if c:\n    z = 1\nprint(z)", ["c", "print", "z"], ["z"]),
        ("res = [v * s for v in data]", ["data", "s"], ["res"]),
        # Python 3.12 inlines comprehensions: their reads must not depend on symtable.
        ("r = {k: v * m for k, v in d.items() if k != skip}", ["d", "m", "skip"], ["r"]),
        ("p = [a * b for a in xs for b in range(a) if a > lim]", ["lim", "range", "xs"], ["p"]),
        ("g = sum(v * w for v in vals)", ["sum", "vals", "w"], ["g"]),
        ("nested = [[c * k for c in row] for row in grid]", ["grid", "k"], ["nested"]),
        ("lst.append(1)\nd['k'] = 2", ["d", "lst"], []),
        (
            "try:\n    a = 1\nexcept E as e:\n    b = a\nelse:\n    c = 2\nfinally:\n    d = 3",
            ["E", "a"],
            ["a", "b", "c", "d", "e"],
        ),
        ("while go:\n    w = 1\nelse:\n    w2 = 2", ["go"], ["w", "w2"]),
        ("del old", [], ["old"]),
        ("f = lambda t: t + off", ["off"], ["f"]),
        (
            "match cmd:\n    case [a, *rest]:\n        r = rest\n    case {'k': v} if v > lim:\n        r = v",
            ["cmd", "lim"],
            ["a", "r", "rest", "v"],
        ),
        ("x: int = y", ["int", "y"], ["x"]),
        ("assert ok, msg", ["msg", "ok"], []),
    ],
)
def test_analysis_finds_inputs_and_outputs(code, inputs, outputs):
    found = analyze(code)
    assert list(found.inputs) == inputs
    assert list(found.outputs) == outputs


def test_analysis_looks_inside_magics_that_run_code():
    from IPython.core.inputtransformer2 import TransformerManager

    code = TransformerManager().transform_cell("%time y = f(x)\n%%timeit -n1\nz = w + 1\n")
    assert "run_line_magic" in code
    found = analyze(code)
    assert {"f", "x"} <= set(found.inputs) and "y" in found.outputs
    cell = TransformerManager().transform_cell("%%time\nimport json\nq = json.dumps(data)\n")
    found = analyze(cell)
    assert "data" in found.inputs and {"q", "json"} <= set(found.outputs)
    assert found.imported_modules == ("json",)
    # Not always Python; when it parses, its names count (over-reporting only costs a hash).
    assert set(analyze(TransformerManager().transform_cell("%sci_config a.b=5\n")).inputs) <= {"a", "get_ipython"}


def test_analysis_notices_environment_reads():
    assert analyze("import os\nm = os.environ['M']").reads_environment
    assert analyze("from os import getenv\nm = getenv('M')").reads_environment
    assert not analyze("m = 1").reads_environment


def test_analysis_reports_imports_star_and_last_expression():
    found = analyze("from pkg.mod import *\nimport numpy\nnumpy.pi")
    assert found.star_import and found.last_expression
    assert found.imported_modules == ("numpy", "pkg.mod")
    assert normalize("x  =  1   # comment") == normalize("x = 1")


# -- entry format ----------------------------------------------------------------


def test_pack_unpack_round_trip_with_memory_mapped_buffers(tmp_path):
    arr = np.arange(300_000, dtype=np.float64)
    small = np.arange(5)
    packed = pack({"arr": arr, "small": small, "f": lambda v: v + 1}, meta={"k": 1}, mmap_min_bytes=1024)
    assert len(packed.buffers) == 1 and packed.nbytes == len(packed.to_bytes())
    path = tmp_path / "entry"
    reader = packed.reader()
    with open(path, "wb") as out:
        while chunk := reader.read(1 << 16):
            out.write(chunk)
    from sci_ext.core.cache.serialize import open_buffer

    with open(path, "rb") as handle:
        buffer = open_buffer(handle)
    value, meta = unpack(buffer)
    assert meta == {"k": 1} and value["f"](1) == 2
    assert np.array_equal(value["arr"], arr) and not value["arr"].flags.owndata
    value["arr"][0] = 99  # copy-on-write: the file is untouched
    again, _ = unpack(open_buffer(open(path, "rb")))
    assert again["arr"][0] == 0


def test_corrupt_entries_are_detected():
    blob = pack({"a": np.ones(1000)}, mmap_min_bytes=16).to_bytes()
    with pytest.raises(CorruptEntry, match="truncated"):
        unpack(bytearray(blob[:-8]))
    with pytest.raises(CorruptEntry, match="bad magic"):
        unpack(bytearray(b"garbage" * 10))
    altered = bytearray(blob)
    altered[read_header(blob)["stream"][0] + 3] ^= 0xFF
    with pytest.raises(CorruptEntry, match="checksum"):
        unpack(altered)
    with pytest.raises(CorruptEntry, match="truncated inside"):
        unpack(bytearray(blob[:20]))
    newer = bytearray(blob.replace(b'"version":1', b'"version":9'))
    with pytest.raises(CorruptEntry, match="format 9"):
        unpack(newer)


# -- stores --------------------------------------------------------------------


def _info(key: str, name: str = "n") -> EntryInfo:
    return EntryInfo(key=key, name=name, kind="cell", size=10, created=time.time())


def test_disk_store_is_private_and_round_trips(tmp_path):
    loose = tmp_path / "cache"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    store = DiskStore(loose, size_limit=2**24)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700  # tightened: diskcache unpickles what is there
    store.set("k1", pack({"v": 1}), _info("k1"), None)
    assert unpack(store.get("k1"))[0] == {"v": 1}
    store.count_hit("k1")  # the entry's hits and the store-wide hits
    (entry,) = store.entries()
    assert (entry.key, entry.name, entry.hits) == ("k1", "n", 1)
    assert store.counters() == {"hits": 1, "misses": 0}
    assert store.delete("k1") and store.get("k1") is None and not store.delete("k1")
    assert store.volume() > 0
    # A writer killed mid-entry leaves a value file without a row; clearing removes it too.
    store.set("big", pack(np.ones(100_000)), _info("big"), None)
    (orphan_dir := loose / "zz" / "zz").mkdir(parents=True)
    (orphan_dir / "partial.val").write_bytes(b"x" * 1000)
    assert store.clear() >= 1
    assert not list(loose.rglob("*.val"))
    store.close()


def test_a_disk_hit_writes_nothing_on_the_hit_path_and_its_bookkeeping_lands_soon(tmp_path):
    """A warm hit was 2.5x a plain cell, a third of it two write transactions (diskcache's access
    time for LRU eviction, the hit counters): they are batched by a background writer now."""
    store = DiskStore(tmp_path / "cache", size_limit=2**24)
    store.set("k1", pack({"v": 1}), _info("k1"), None)
    store.set("k2", pack({"v": 2}), _info("k2"), None)
    row = "SELECT access_time FROM Cache WHERE key = ?"
    before = store.cache._sql(row, ("entry:k1",)).fetchone()[0]
    statements: list[str] = []
    store.cache._con.set_trace_callback(statements.append)
    try:
        time.sleep(0.01)
        for _ in range(3):
            assert unpack(store.get("k1"))[0] == {"v": 1}
            store.count_hit("k1")
    finally:
        store.cache._con.set_trace_callback(None)
    writes = [s for s in statements if s.split()[0].upper() in ("BEGIN", "UPDATE", "INSERT", "DELETE")]
    assert statements and not writes, writes
    deadline = time.monotonic() + 5
    while store.cache._sql(row, ("entry:k1",)).fetchone()[0] == before and time.monotonic() < deadline:
        time.sleep(0.01)  # the background writer
    assert store.cache._sql(row, ("entry:k1",)).fetchone()[0] > before  # LRU eviction sees the read
    assert {e.key: e.hits for e in store.entries()} == {"k1": 3, "k2": 0}  # readers flush first
    assert store.counters() == {"hits": 3, "misses": 0}
    store.count_hit("k2")
    store.clear()  # pending counts of cleared entries are dropped, not written into the empty cache
    assert store.counters() == {"hits": 0, "misses": 0}
    store.close()


def test_an_entry_header_with_a_large_meta_is_encoded_as_json_would():
    """pack encodes the meta (a cell's file fingerprints) once, not on every pass over the header."""
    from sci_ext.core.cache.serialize import _head

    meta = {"files": {f"d/{i}.csv": ["file", i, 10**18 + i, ""] for i in range(300)}, "info": {"meta": None}}
    packed = pack({"v": np.ones(50_000)}, meta=meta, mmap_min_bytes=1000)
    assert packed.head == _head(packed.header) and read_header(packed.to_bytes())["meta"] == meta


def test_disk_store_refuses_a_directory_of_another_user(tmp_path, monkeypatch):
    target = tmp_path / "x"
    target.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(target, 12345, 12345)  # root can give it away: now another user's
    else:
        monkeypatch.setattr("sci_ext.core.trust._me", lambda: 12345)
    with pytest.raises(CacheError, match=r"x belongs to another user \(owner .*uid 12345.*Fix"):
        ensure_private_dir(target)


def test_memory_store_lru_and_ttl():
    store = MemoryStore(max_items=2)
    for key in ("a", "b", "c"):
        store.set(key, pack(key), _info(key), None)
    assert store.get("a") is None and unpack(store.get("c"))[0] == "c"
    store.set("t", pack(1), _info("t"), 0.0)
    assert store.get("t") is None
    store.count_hit("c")
    assert [e.hits for e in store.entries() if e.key == "c"] == [1]
    assert store.delete("c") and store.clear() == 0


def test_redis_store_round_trip_and_unreachable(redis_server):
    store = RedisStore(redis_server.url, signing_key="k1")
    store.ping()
    store.set("k", pack([1, 2]), _info("k", "r"), 5)
    assert unpack(store.get("k"))[0] == [1, 2]
    store.count_hit("k")
    (entry,) = store.entries()
    assert (entry.name, entry.hits, entry.backend) == ("r", 1, "redis")
    assert store.delete("k") and store.get("k") is None
    redis_server.stop()
    from sci_ext.core.cache.store import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="unreachable"):
        store.get("k")


def test_layered_store_falls_back_and_warns_once(tmp_path, redis_server):
    warnings: list[str] = []
    remote = RedisStore(redis_server.url, timeout=0.5, signing_key="k1")
    layered = LayeredStore(get_disk_store(str(tmp_path / "d"), 2**24), remote, warnings.append)
    assert layered.backend == "disk+redis"
    layered.set("k", pack("v"), _info("k"), None)
    other = LayeredStore(get_disk_store(str(tmp_path / "e"), 2**24), remote, warnings.append)
    buffer, layer = other.get("k")
    assert layer == "redis" and unpack(buffer)[0] == "v"
    assert other.get("k")[1] == "disk"  # copied locally
    redis_server.stop()
    LayeredStore._down_until.clear()
    layered.set("k2", pack("w"), _info("k2"), None)
    assert layered.get("k3") is None
    layered.count_hit("k2")
    assert len(warnings) == 1 and "local cache only" in warnings[0]
    assert unpack(layered.get("k2")[0])[0] == "w"
    LayeredStore._down_until.clear()


def test_redact_url_hides_passwords():
    assert redact_url("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("redis://host/0") == "redis://host/0"


def test_stats_hook_counts_and_notifies():
    seen = []
    stats.reset_counters()
    unsubscribe = stats.subscribe(seen.append)
    remove_broken = stats.subscribe(lambda e: 1 / 0)  # a broken listener never breaks a lookup
    stats.record(stats.CacheEvent("cell", "disk", "hit"))
    unsubscribe()
    stats.record(stats.CacheEvent("cell", "disk", "hit"))
    assert stats.cache_counters() == {("disk", "hit"): 2}
    assert len(seen) == 1 and seen[0].layer == "disk"
    remove_broken()
    empty = stats.cache_size_bytes()
    from sci_ext.core.config import get_config

    cfg = get_config().cache
    get_disk_store(cfg.dir, cfg.size_limit_bytes).set("s", pack(np.ones(50_000)), _info("s"), None)
    assert stats.cache_size_bytes() >= empty + 400_000


def test_more_kinds_of_values_hash_by_content(tmp_path):
    from collections import namedtuple

    Pair = namedtuple("Pair", "a b")
    assert hash_value(Pair(1, 2)) != hash_value(Pair(1, 3)) and hash_value(Pair(1, 2)) != hash_value((1, 2))
    assert hash_value(tmp_path / "a") != hash_value(tmp_path / "b")
    rec = np.zeros(3, dtype=[("x", "i4"), ("y", "f8")])
    rec2 = rec.copy()
    rec2["y"][1] = 1.5
    assert hash_value(rec) != hash_value(rec2)
    assert hash_value(np.int64(3)) != hash_value(np.int32(3))
    assert hash_value([lambda v: v + 1]) != hash_value([lambda v: v + 2])  # cloudpickle fallback

    ns = {"__name__": "__main__"}
    exec(
        "class Base:\n    pass\n"
        "class Thing(Base):\n"
        "    @property\n    def p(self):\n        return 1\n"
        "    def m(self, *, k=KW):\n        return k\n"
        "def outer():\n    v = 1\n    def inner():\n        return v\n    return inner\n",
        {**ns, "KW": 1},
        ns,
    )
    thing_hash = hash_value(ns["Thing"])
    assert hash_value(ns["Thing"]().m) != hash_value(ns["Base"])
    exec("class Thing(Base):\n    @property\n    def p(self):\n        return 2\n", ns)
    assert hash_value(ns["Thing"]) != thing_hash  # an edited property
    assert hash_value(ns["outer"]()) == hash_value(ns["outer"]())
    assert hash_value(ns["Thing"]) == hash_value(ns["Thing"])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        min_size=33,
        max_size=60,
    ),
    st.data(),
)
def test_property_long_flat_lists_take_the_fast_path_and_stay_exact(items, data):
    assert hash_value(list(items)) == hash_value([x for x in items])  # equal content, other objects
    index = data.draw(st.integers(0, len(items) - 1))
    changed = list(items)
    changed[index] = data.draw(st.none() | st.booleans() | st.integers() | st.text(max_size=5))
    if _same(changed, items):
        assert hash_value(changed) == hash_value(items)
    else:
        assert hash_value(changed) != hash_value(items)
    assert hash_value(tuple(items)) != hash_value(list(items))


def test_long_lists_hash_fast_and_differ_from_short_path():
    long = [f"prompt {i}" for i in range(100_000)]
    start = time.perf_counter()
    first = hash_value(long)
    elapsed = time.perf_counter() - start
    assert first == hash_value(list(long)) and first != hash_value(long[:-1] + ["other"])
    print(f"100k strings hashed in {elapsed * 1e3:.1f} ms")  # a figure, not an assertion


def test_redis_entries_signed_with_a_shared_key(redis_server):
    from sci_ext.core.cache.store import UnsignedEntry

    signed = RedisStore(redis_server.url, signing_key="team-key-1")
    signed.set("k", pack({"ok": 1}), _info("k"), None)
    assert unpack(RedisStore(redis_server.url, signing_key="team-key-1").get("k"))[0] == {"ok": 1}
    with pytest.raises(UnsignedEntry):
        RedisStore(redis_server.url, signing_key="other-key").get("k")
    # Someone without the key writes a (possibly malicious) pickle: never unpickled.
    RedisStore(redis_server.url, signing_key="attacker-key").set("k", pack({"evil": 1}), _info("k"), None)
    with pytest.raises(UnsignedEntry, match="never unpickled"):
        signed.get("k")
    signed.client.delete(f"{signed.prefix}sig:k")  # unsigned
    with pytest.raises(UnsignedEntry, match="not signed"):
        signed.get("k")
    assert signed.delete("k")


def test_redis_cache_refuses_to_start_without_a_signing_key(redis_server):
    for key in (None, ""):
        with pytest.raises(CacheError, match=r"cache.redis_signing_key is not.*SCI_EXT_CACHE__REDIS_SIGNING_KEY"):
            RedisStore(redis_server.url, signing_key=key)


def test_redis_signature_binds_the_entry_key_expiry_and_format(redis_server):
    from sci_ext.core.cache.store import UnsignedEntry

    store = RedisStore(redis_server.url, signing_key="team-key-1")
    store.set("doc1", pack("result of doc1"), _info("doc1"), None)
    store.set("doc2", pack("result of doc2"), _info("doc2"), 60)
    client, prefix = store.client, store.prefix
    # Moved: doc1's entry and signature copied under doc2's key.
    for part in ("entry", "sig"):
        client.set(f"{prefix}{part}:doc2", client.get(f"{prefix}{part}:doc1"))
    with pytest.raises(UnsignedEntry, match="moved from another key"):
        store.get("doc2")
    # Replayed after expiry: a signed entry whose signed expiry has passed.
    store.set("old", pack("stale"), _info("old"), 1)
    sig = client.get(f"{prefix}sig:old")
    blob = client.get(f"{prefix}entry:old")
    expired = int(time.time()) - 3600
    client.set(f"{prefix}sig:old", bytes([sig[0]]) + expired.to_bytes(8, "big") + sig[9:])
    client.set(f"{prefix}entry:old", blob)
    with pytest.raises(UnsignedEntry, match="moved from another key"):
        store.get("old")  # the expiry is inside the HMAC: editing it breaks the signature
    forged_exp = bytes([sig[0]]) + expired.to_bytes(8, "big") + store._mac("old", expired, blob)
    client.set(f"{prefix}sig:old", forged_exp)  # (only a key holder could make this one)
    with pytest.raises(UnsignedEntry, match="expiry has passed"):
        store.get("old")
    # An entry signed in the old format (HMAC of the bytes only) is refused, never unpickled.
    import hashlib
    import hmac

    client.set(f"{prefix}sig:doc1", hmac.new(b"team-key-1", client.get(f"{prefix}entry:doc1"), hashlib.sha256).digest())
    with pytest.raises(UnsignedEntry, match="not signed"):
        store.get("doc1")


def test_local_modules_are_keyed_by_source_and_settings(tmp_path, monkeypatch):
    import importlib
    import sys

    (tmp_path / "sci_ext_local_settings.py").write_text("lr = 0.1\ndef scale(v):\n    return v * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("sci_ext_local_settings")
    try:
        first = hash_value(module)
        module.lr = 0.2  # changed at run time
        assert hash_value(module) != first
        module.lr = 0.1
        assert hash_value(module) == first
        (tmp_path / "sci_ext_local_settings.py").write_text("lr = 0.1\ndef scale(v):\n    return v * 3\n")
        os.utime(tmp_path / "sci_ext_local_settings.py", ns=(1, 2))
        assert hash_value(module) != first  # the file was edited
        assert hash_value(np) == hash_value(np)  # versioned packages: name and version only
    finally:
        sys.modules.pop("sci_ext_local_settings", None)


class _Frame:
    """Stands in for a pandas DataFrame: named columns held as numpy arrays inside an object."""

    def __init__(self, columns):
        self.columns = columns


def test_arrays_inside_objects_are_memory_mapped_too(tmp_path):
    from sci_ext.core.cache.serialize import open_buffer

    frame = _Frame({"a": np.arange(200_000.0), "b": np.ones(200_000, dtype=np.int32)})
    packed = pack({"frame": frame}, mmap_min_bytes=100_000)
    assert len(packed.buffers) == 2
    path = tmp_path / "entry"
    path.write_bytes(packed.to_bytes())
    with open(path, "rb") as handle:
        restored, _ = unpack(open_buffer(handle))
    columns = restored["frame"].columns
    assert np.array_equal(columns["a"], frame.columns["a"]) and columns["b"].dtype == np.int32
    assert all(not c.flags.owndata and c.flags.writeable for c in columns.values())


def test_an_npz_file_is_packed_as_its_file_and_refuses_a_changed_file(tmp_path):
    """An NpzFile (np.load) holds an open file: packed as its path and options, opened again on
    unpack, and never opened again from a file that changed since (whatever checked it before)."""

    from sci_ext.core.errors import CacheError

    path = tmp_path / "xy.npz"
    np.savez(path, x=np.arange(4))
    with np.load(path) as handle:
        packed = pack({"z": handle}).to_bytes()
        value, _ = unpack(bytearray(packed))
        assert value["z"].files == ["x"] and value["z"]["x"].tolist() == [0, 1, 2, 3]
        value["z"].close()
        np.savez(path, x=np.arange(5))
        os.utime(path, ns=(1, 1))
        with pytest.raises(CacheError, match="changed since"):
            unpack(bytearray(packed))
