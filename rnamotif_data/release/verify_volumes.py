"""Check the volumes section of a store (``rnamotif build --tiles``): the entries' block
arrays and the three tables ``volumes.parquet``, ``tiles.parquet`` and
``instances.parquet`` (:mod:`rnamotif_data.storage.volumes`; ``docs/store.md``, "Volumes and
tiles"). Called by :func:`rnamotif_data.release.verify.verify_store` when a store has
volumes (its ``tiles`` attribute or a ``volumes.parquet``).

Checks (each problem one line naming the table row, entry or array):

- the three tables exist with their schemas; ``volumes.parquet`` has one row per entry;
- every entry without ``error`` has its five arrays (``volumes/<entry>/<name>``):
  ``(nbz * nby * nbx, B, B, B)`` with ``blocks_zyx = ceil(grid_shape / B)``, the dtypes of
  :data:`~rnamotif_data.storage.volumes.VOLUME_DTYPES`, one block per inner chunk, one z row
  of blocks per shard; its ``n_tiles`` and ``n_instances`` count its rows of the other two
  tables and its ``voxels_per_element`` sums to the grid's voxels; an entry with an
  ``error`` (one line) has no arrays, tiles or instances; no folder of ``volumes/`` is
  outside the table;
- ``tiles.parquet``: ``tile_index`` 0..n-1, every tile of an entry with volumes,
  ``origin_voxel = tile_zyx * stride`` inside the grid, ``origin_xyz`` the grid's point
  there, ``size`` the build's, ``clipped`` true exactly when the tile runs past the grid,
  ``voxels_per_element`` summing to the tile's voxels inside the grid, ``holds_rna``
  matching it, instances among the entry's;
- ``instances.parquet``: each entry's ids are 1..``n_instances`` in order;
- values (unless ``--no-values``): every block of every array is decoded (its CRC32C
  checked), one z row of blocks at a time; density finite in [0, 1], element ids 0..8,
  part ids 0..5, nucleotide ids 0..5, instance ids 0..``n_instances``; labelled voxels
  consistent (element and part non-zero together, a nucleotide only on an RNA element, an
  instance only on a loop element); each entry's ``voxels_per_element`` and each
  instance's ``n_voxels`` equal the decoded volumes' counts; and each tile's
  ``voxels_per_element`` and ``instances`` equal what its box holds -- every tile of an
  entry whose grid has at most :data:`WHOLE_GRID_VOXELS` voxels (its element and
  instance volumes are kept whole while decoding, 5 B per voxel), else
  :data:`SAMPLED_TILES` tiles of the entry drawn with a fixed seed (each read as the blocks
  it covers).

Damaged files are also named by ``checksums.sha256``, which lists every file of
``volumes/`` (:func:`rnamotif_data.storage.checksums.check_checksums`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from rnamotif_data.errors import StoreError, one_line
from rnamotif_data.samples.tiles import RNA_ELEMENTS
from rnamotif_data.storage.layout import join, read_table, url_to_fs
from rnamotif_data.storage.shards import ShardReader
from rnamotif_data.storage.volumes import (
    INSTANCE_SCHEMA,
    INSTANCES_FILE,
    TILE_SCHEMA,
    TILES_FILE,
    VOLUME_ARRAYS,
    VOLUME_DTYPES,
    VOLUME_SCHEMA,
    VOLUMES,
    VOLUMES_FILE,
    VolumeReader,
    blocks_per_axis,
)

log = logging.getLogger("rnamotif_data.release.verify")

__all__ = ["WHOLE_GRID_VOXELS", "SAMPLED_TILES", "has_volumes", "verify_volumes"]

#: an entry's grid up to this many voxels has every tile recounted (module docstring)
WHOLE_GRID_VOXELS = 1 << 25
#: tiles recounted per larger entry
SAMPLED_TILES = 200
_N_ELEMENTS = 9
_MAX_PART, _MAX_NUCLEOTIDE = 5, 5
_LOOPS = (2, 3, 4, 5)
_SHOWN = 5  # problems listed per entry and kind before "... and N more"


def has_volumes(root: str, attrs: Mapping) -> bool:
    """Whether the store has a volumes section (a ``tiles`` attribute or ``volumes.parquet``)."""
    if attrs.get("tiles") is not None or (attrs.get("build_config") or {}).get("tiles"):
        return True
    fs, path = url_to_fs(join(root, VOLUMES_FILE))
    return bool(fs.exists(path))


def verify_volumes(root: str, attrs: Mapping, *, values: bool = True) -> list[str]:
    """The problems of a store's volumes section (module docstring), one line each; empty
    when it passes. Damage is reported, never raised."""
    tables, problems = {}, []
    for name, schema in ((VOLUMES_FILE, VOLUME_SCHEMA), (TILES_FILE, TILE_SCHEMA), (INSTANCES_FILE, INSTANCE_SCHEMA)):
        try:
            t = read_table(join(root, name))
        except Exception as exc:  # noqa: BLE001 - a damaged store is reported, not raised
            problems.append(f"{name}: cannot be read ({one_line(exc)})")
            continue
        if not t.schema.equals(schema, check_metadata=False):
            problems.append(f"{name}: schema differs from the store contract (storage.volumes)")
            continue
        tables[name] = t.to_pylist()
    if problems:
        return problems
    tile_cfg = (attrs.get("build_config") or {}).get("tile") or {}
    if not {"size", "stride"} <= set(tile_cfg):
        return ["attributes: build_config.tile (size, stride) missing; the tiles cannot be checked"]
    vols, tiles, insts = tables[VOLUMES_FILE], tables[TILES_FILE], tables[INSTANCES_FILE]
    entries, found = _check_volume_rows(root, vols, tiles, insts)
    problems += found
    problems += _check_tile_rows(tiles, entries, int(tile_cfg["size"]), int(tile_cfg["stride"]))
    problems += _check_instance_rows(insts, entries)
    if values:
        for key, row in entries.items():
            problems += _entry_values(root, row, [i for i in insts if i["entry"] == key],
                                      [t for t in tiles if t["entry"] == key])
    return problems


def _array_problems(root: str, row: Mapping) -> list[str]:
    """The five arrays of an entry with volumes: present, their shape, dtype, chunks, shards."""
    key, B = row["entry"], int(row["block"])
    nbz, nby, nbx = (int(v) for v in row["blocks_zyx"])
    out = []
    for name in VOLUME_ARRAYS:
        where = f"{VOLUMES}/{key}/{name}"
        fs, path = url_to_fs(join(root, VOLUMES, key, name, "zarr.json"))
        try:
            meta = json.loads(fs.cat_file(path))
        except (OSError, ValueError) as exc:
            out.append(f"{where}: missing or unreadable zarr.json ({type(exc).__name__})")
            continue
        try:
            shape = tuple(meta["shape"])
            shard = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
            inner = tuple(meta["codecs"][0]["configuration"]["chunk_shape"])
            dtype = meta["data_type"]
        except (KeyError, IndexError, TypeError):
            out.append(f"{where}: zarr.json is not a sharded array's")
            continue
        if shape != (nbz * nby * nbx, B, B, B):
            out.append(f"{where}: shape {shape}, expected {(nbz * nby * nbx, B, B, B)} (blocks_zyx {[nbz, nby, nbx]})")
        if dtype != VOLUME_DTYPES[name]:
            out.append(f"{where}: dtype {dtype}, expected {VOLUME_DTYPES[name]}")
        if inner != (1, B, B, B) or shard != (nby * nbx, B, B, B) or not ShardReader.supports(meta):
            out.append(f"{where}: chunks {inner} / shards {shard}, expected one block per chunk and one z row "
                       f"of blocks {(nby * nbx, B, B, B)} per shard with CRC32C")
    return out


def _check_volume_rows(root: str, vols: Sequence[dict], tiles: Sequence[dict],
                       insts: Sequence[dict]) -> tuple[dict[str, dict], list[str]]:
    """``volumes.parquet`` against the arrays and the other tables; returns the entries
    with volumes (key -> row) whose rows are consistent enough to read, and the problems."""
    problems: list[str] = []
    n_tiles: dict[str, int] = {}
    n_inst: dict[str, int] = {}
    for t in tiles:
        n_tiles[t["entry"]] = n_tiles.get(t["entry"], 0) + 1
    for i in insts:
        n_inst[i["entry"]] = n_inst.get(i["entry"], 0) + 1
    entries: dict[str, dict] = {}
    seen: set[str] = set()
    for row in vols:
        key = row["entry"]
        where = f"{VOLUMES_FILE}: entry {key}"
        if key in seen:
            problems.append(f"{where}: listed twice")
            continue
        seen.add(key)
        fs, folder = url_to_fs(join(root, VOLUMES, key))
        if row["error"] is not None:
            if "\n" in row["error"]:
                problems.append(f"{where}: error is not one line")
            if fs.exists(folder):
                problems.append(f"{VOLUMES}/{key}: arrays of an entry whose {VOLUMES_FILE} row has an error")
            if n_tiles.get(key) or n_inst.get(key):
                problems.append(f"{where}: has an error yet {n_tiles.get(key, 0)} tiles and {n_inst.get(key, 0)} "
                                "instances")
            continue
        grid, block = row["grid_shape"], row["block"]
        if grid is None or block is None or row["blocks_zyx"] is None or min(grid) < 1 or block < 1:
            problems.append(f"{where}: no grid_shape, block or blocks_zyx")
            continue
        if list(row["blocks_zyx"]) != list(blocks_per_axis(grid, block)):
            problems.append(f"{where}: blocks_zyx {row['blocks_zyx']} != ceil(grid_shape {grid} / {block})")
            continue
        found = _array_problems(root, row)
        problems += found
        for col, n in (("n_tiles", n_tiles.get(key, 0)), ("n_instances", n_inst.get(key, 0))):
            if row[col] != n:
                problems.append(f"{where}: {col} {row[col]} but {n} rows in "
                                f"{TILES_FILE if col == 'n_tiles' else INSTANCES_FILE}")
        vpe = row["voxels_per_element"] or []
        if len(vpe) != _N_ELEMENTS or sum(vpe) != int(np.prod(grid)):
            problems.append(f"{where}: voxels_per_element {vpe} does not count the grid's {int(np.prod(grid))} voxels")
        if not found:
            entries[key] = row
    problems += _foreign_folders(root, seen, vols)
    return entries, problems


def _foreign_folders(root: str, seen: set[str], vols: Sequence[dict]) -> list[str]:
    """Folders of ``volumes/`` that no row of ``volumes.parquet`` lists."""
    fs, base = url_to_fs(join(root, VOLUMES))
    if not fs.isdir(base):
        return [f"{VOLUMES}/: missing" for r in vols if r["error"] is None][:1]
    names = [p.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1] for p in fs.ls(base, detail=False)]
    return [f"{VOLUMES}/{n}: not an entry of {VOLUMES_FILE}" for n in sorted(names)
            if n != "zarr.json" and n not in seen]


def _tile_problem(t: dict, row: dict, size: int, stride: int) -> str | None:
    """What is wrong with one tile row of an entry with volumes (None: nothing)."""
    grid = np.asarray(row["grid_shape"], dtype=np.int64)
    o = np.asarray(t["origin_voxel"], dtype=np.int64)
    if o.tolist() != [int(v) * stride for v in t["tile_zyx"]] or np.any(o < 0) or np.any(o >= grid):
        return (f"origin_voxel {o.tolist()} is not tile_zyx {t['tile_zyx']} x stride {stride} inside the grid "
                f"{grid.tolist()}")
    xyz = np.asarray(row["origin_xyz"]) + o[::-1] * float(row["voxel_size"])
    if not np.allclose(t["origin_xyz"], xyz, rtol=0, atol=1e-6):
        return f"origin_xyz {t['origin_xyz']} is not the grid's point {xyz.tolist()} at origin_voxel {o.tolist()}"
    if t["size"] != size:
        return f"size {t['size']}, the build's tile size is {size}"
    if bool(t["clipped"]) != bool(np.any(o + size > grid)):
        return f"clipped is {t['clipped']} for a tile at {o.tolist()} of {size} voxels in a grid of {grid.tolist()}"
    vpe = t["voxels_per_element"] or []
    inside = int(np.prod(np.minimum(size, grid - o)))
    if len(vpe) != _N_ELEMENTS or sum(vpe) != inside:
        return f"voxels_per_element {vpe} does not count its {inside} voxels inside the grid"
    if bool(t["holds_rna"]) != any(vpe[e] > 0 for e in RNA_ELEMENTS):
        return f"holds_rna is {t['holds_rna']} but voxels_per_element is {vpe}"
    ids = list(t["instances"] or [])
    if ids != sorted(set(ids)) or any(not 0 < i <= row["n_instances"] for i in ids):
        return f"instances {ids} are not sorted unique ids among the entry's 1..{row['n_instances']}"
    return None


def _check_tile_rows(tiles: Sequence[dict], entries: Mapping[str, dict], size: int, stride: int) -> list[str]:
    """``tiles.parquet`` rows against ``volumes.parquet`` and the build's tile settings."""
    problems = []
    if [t["tile_index"] for t in tiles] != list(range(len(tiles))):
        problems.append(f"{TILES_FILE}: tile_index is not 0..n-1 in order")
    seen: set[tuple] = set()
    for k, t in enumerate(tiles):
        where = f"{TILES_FILE}: row {k} (entry {t['entry']}, tile {t['tile_zyx']})"
        row = entries.get(t["entry"])
        if row is None:
            problems.append(f"{where}: the entry has no volumes (not in {VOLUMES_FILE}, its row has an error, "
                            "or its arrays are damaged)")
            continue
        ident = (t["entry"], tuple(t["tile_zyx"]))
        if ident in seen:
            problems.append(f"{where}: listed twice")
        seen.add(ident)
        bad = _tile_problem(t, row, size, stride)
        if bad is not None:
            problems.append(f"{where}: {bad}")
    return problems


def _check_instance_rows(insts: Sequence[dict], entries: Mapping[str, dict]) -> list[str]:
    """Each entry's instance ids are 1..n in order; every instance's entry has volumes."""
    problems = []
    ids: dict[str, list[int]] = {}
    for i in insts:
        ids.setdefault(i["entry"], []).append(int(i["instance"]))
    for key, got in ids.items():
        if key not in entries:
            problems.append(f"{INSTANCES_FILE}: entry {key} has no volumes (not in {VOLUMES_FILE}, its row has an "
                            "error, or its arrays are damaged)")
        elif got != list(range(1, len(got) + 1)):
            problems.append(f"{INSTANCES_FILE}: entry {key}: instance ids {got[:8]}... are not 1..{len(got)} in order")
    return problems


def _slab_problems(key: str, z0: int, v: Mapping[str, np.ndarray], n_instances: int) -> list[str]:
    """Value ranges and label consistency of planes ``z0 ...`` of an entry's volumes."""
    out = []
    d, e, p, n, i = (v[name] for name in VOLUME_ARRAYS)
    where = f"{VOLUMES}/{key}: planes {z0}-{z0 + len(d) - 1}"
    df = d.astype(np.float32)
    if not np.isfinite(df).all() or df.min() < 0 or df.max() > 1:
        out.append(f"{where}: density outside [0, 1] or not finite")
    for name, a, top in (("element", e, _N_ELEMENTS - 1), ("part", p, _MAX_PART), ("nucleotide", n, _MAX_NUCLEOTIDE),
                         ("instance", i, n_instances)):
        if a.size and int(a.max()) > top:
            out.append(f"{where}: {name} ids up to {int(a.max())}, at most {top}")
    if not np.array_equal(e > 0, p > 0):
        out.append(f"{where}: element and part volumes label different voxels")
    if np.any((n > 0) & ~np.isin(e, RNA_ELEMENTS)):
        out.append(f"{where}: a nucleotide on a voxel that is not an RNA element")
    if np.any((i > 0) & ~np.isin(e, _LOOPS)):
        out.append(f"{where}: an instance on a voxel that is not a loop element")
    return out


def _entry_values(root: str, row: Mapping, insts: Sequence[dict], tiles: Sequence[dict]) -> list[str]:
    """Decode every block of an entry (one z row of blocks at a time), check its values and
    counts and recount its tiles (all, or :data:`SAMPLED_TILES` of a large grid)."""
    key, B = row["entry"], int(row["block"])
    D, H, W = (int(v) for v in row["grid_shape"])
    n_inst = int(row["n_instances"])
    reader = VolumeReader(root, key, (D, H, W), B)
    whole = D * H * W <= WHOLE_GRID_VOXELS
    keep = {n: np.zeros((D, H, W), VOLUME_DTYPES[n]) for n in ("element", "instance")} if whole else None
    problems: list[str] = []
    per_element = np.zeros(_N_ELEMENTS, dtype=np.int64)
    per_instance = np.zeros(n_inst + 1, dtype=np.int64)
    try:
        for z0 in range(0, D, B):
            v = reader.read_box((z0, 0, 0), (min(B, D - z0), H, W), VOLUME_ARRAYS)
            problems += _slab_problems(key, z0, v, n_inst)
            per_element += np.bincount(v["element"].ravel(), minlength=_N_ELEMENTS)[:_N_ELEMENTS]
            per_instance += np.bincount(v["instance"].ravel(), minlength=n_inst + 1)[:n_inst + 1]
            if keep is not None:
                for name, a in keep.items():
                    a[z0:z0 + B] = v[name]
        if list(per_element) != list(row["voxels_per_element"]):
            problems.append(f"{VOLUMES_FILE}: entry {key}: voxels_per_element {row['voxels_per_element']}, the "
                            f"decoded element volume has {per_element.tolist()}")
        bad = [i["instance"] for i in insts if 0 < i["instance"] <= n_inst and i["n_voxels"] != per_instance[i["instance"]]]
        if bad:
            problems.append(f"{INSTANCES_FILE}: entry {key}: n_voxels of instances {bad[:_SHOWN]} differ from the "
                            "decoded instance volume")
        problems += _tile_values(reader, row, tiles, keep)
    except StoreError as exc:
        problems.append(f"{VOLUMES}/{key}: {one_line(exc)}")
    finally:
        reader.close()
    return problems


def _tile_values(reader: VolumeReader, row: Mapping, tiles: Sequence[dict],
                 whole: Mapping[str, np.ndarray] | None) -> list[str]:
    """Each checked tile's ``voxels_per_element`` and ``instances`` against its box."""
    grid = np.asarray(row["grid_shape"], dtype=np.int64)
    chosen = list(tiles)
    if whole is None and len(chosen) > SAMPLED_TILES:
        rng = np.random.default_rng(0)
        chosen = [chosen[k] for k in np.sort(rng.choice(len(chosen), SAMPLED_TILES, replace=False))]
    bad = []
    for t in chosen:
        o = np.asarray(t["origin_voxel"], dtype=np.int64)
        if np.any(o < 0) or np.any(o >= grid):
            continue  # named by the table check
        extent = np.minimum(int(t["size"]), grid - o)
        if whole is not None:
            box = tuple(slice(int(a), int(a + b)) for a, b in zip(o, extent))
            e, i = whole["element"][box], whole["instance"][box]
        else:
            v = reader.read_box(o.tolist(), extent.tolist(), ("element", "instance"))
            e, i = v["element"], v["instance"]
        vpe = np.bincount(e.ravel(), minlength=_N_ELEMENTS)[:_N_ELEMENTS].tolist()
        ids = [int(x) for x in np.unique(i) if x > 0]
        if vpe != list(t["voxels_per_element"]) or ids != list(t["instances"]):
            bad.append(int(t["tile_index"]))
    if not bad:
        return []
    more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
    return [f"{TILES_FILE}: entry {row['entry']}: tiles {bad[:_SHOWN]}{more}: voxels_per_element or instances "
            "differ from what their box of the decoded volumes holds"]
