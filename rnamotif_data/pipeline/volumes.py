"""An entry's whole-map volumes and tiles, made inside its build task (``rnamotif build
--tiles``).

After the entry's cubes, :func:`stage_volumes` assigns every residue its element
(:func:`rnamotif_data.rna.elements.assign_elements`, the build's base-pair rule), labels the
map's 1 Å grid slab by slab (:func:`rnamotif_data.samples.volumes.iter_label_slabs`), gathers
the slabs into z rows of blocks and writes each row as one shard of the entry's arrays
(:func:`rnamotif_data.storage.volumes.write_block_row`; the task is the only writer of its
entry's arrays), while counting voxels and instances per cell for the tile table
(:mod:`rnamotif_data.samples.tiles`). Its rows for ``volumes.parquet``, ``tiles.parquet``
and ``instances.parquet`` go into the entry's staging record, which is written last: a
resumed build redoes an entry whose record is missing, arrays included.

Peak memory beside the input map: one block row (``B`` planes of the padded grid, 9 B
per voxel) and one labelling slab (:mod:`rnamotif_data.samples.volumes`, "Memory").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from rnamotif_data.em.maps import DensityMap, MapStatistics
from rnamotif_data.errors import ModelOutsideMapError, NoRNAError, RNAMotifError, TileSizeError, is_environment_failure
from rnamotif_data.inputs.schema import row_selection
from rnamotif_data.pipeline.config import BuildConfig
from rnamotif_data.rna.elements import ElementAssignment, assign_elements
from rnamotif_data.rna.structure import Model
from rnamotif_data.samples.tiles import CellCounts, put_slab, tile_table
from rnamotif_data.samples.volumes import VolumeGrid, check_tile_size, iter_label_slabs, volume_grid
from rnamotif_data.storage.volumes import (
    VOLUME_ARRAYS,
    VOLUME_DTYPES,
    blocks_per_axis,
    create_volume_arrays,
    instance_row,
    remove_volume_arrays,
    volume_row,
    write_block_row,
)

log = logging.getLogger("rnamotif_data.pipeline.builder")

__all__ = ["EntryVolumes", "stage_volumes", "failed_volumes"]


class EntryVolumes:
    """Who the entry is, for its table rows: ``root`` (the store), ``key`` (entry key),
    ``pdb_id``, ``emdb_id``, ``resolution`` (Å or None) and ``rows`` (its manifest rows,
    ``(row number, row dict)``)."""

    def __init__(self, root: str, key: str, pdb_id: str, emdb_id: str | None, resolution: float | None,
                 rows: Sequence[tuple[int, dict]]):
        self.root, self.key, self.pdb_id, self.emdb_id = root, key, pdb_id, emdb_id
        self.resolution, self.rows = resolution, tuple(rows)

    def volume(self, grid: VolumeGrid | None, block: int, **values) -> dict:
        """The entry's ``volumes.parquet`` row (``values``: the counts and error)."""
        blocks = list(blocks_per_axis(grid.shape, block)) if grid is not None else None
        return volume_row(entry=self.key, pdb_id=self.pdb_id, emdb_id=self.emdb_id, resolution=self.resolution,
                          origin_xyz=list(grid.origin) if grid is not None else None,
                          grid_shape=list(grid.shape) if grid is not None else None,
                          voxel_size=grid.voxel_size if grid is not None else None, block=int(block),
                          blocks_zyx=blocks, **values)


def failed_volumes(who: EntryVolumes, config: BuildConfig, error: str) -> dict:
    """The staging record of an entry without volumes: its ``volumes.parquet`` row with the
    one-line ``error``, no tiles, no instances."""
    row = who.volume(None, config.tile.block, rna_chains=None, chain_sequences=None, n_instances=0, n_tiles=0, voxels_per_element=None, error=error)
    return {"volume": row, "tiles": [], "instances": []}


def stage_volumes(who: EntryVolumes, model: Model, dmap: DensityMap, stats: MapStatistics, partner: np.ndarray,
                  config: BuildConfig) -> dict:
    """Write the entry's volume arrays and return its staging record ``{"volume": row,
    "tiles": [rows], "instances": [rows]}`` (rows without ``tile_index``; the commit
    numbers them). An entry whose map cannot be tiled -- no RNA in the map, a model outside
    it, a tile larger than the map -- gets a row with the reason and nothing else; a
    failure of the machine (a full disk) is raised.
    """
    vc = config.volume_config
    try:
        grid = volume_grid(dmap, vc.voxel_size)
        n_tiles = check_tile_size(grid.shape, config.tile.size, config.tile.stride)
        elements = (assign_elements(model, "rnapolis") if config.pairs == "rnapolis"
                    else assign_elements(model, config.pairs, partner=partner))
        slabs = iter_label_slabs(dmap, model, elements, vc, stats=stats)
    except (NoRNAError, ModelOutsideMapError, TileSizeError, RNAMotifError) as exc:
        log.info("%s: no volumes: %s", who.key, exc)
        return failed_volumes(who, config, f"{who.key}: {exc}")
    try:
        cells = _write_blocks(who, grid, slabs, config, len(elements.instances))
    except Exception as exc:
        remove_volume_arrays(who.root, who.key)
        if is_environment_failure(exc):
            raise
        log.warning("%s: volumes failed: %s", who.key, exc)
        return failed_volumes(who, config, f"{who.key}: volumes failed: {type(exc).__name__}: {exc}")
    types = [i.fine_type for i in elements.instances]
    tiles = [_tile_columns(who, grid, t) for t in tile_table(cells, config.tile, n_tiles, who.key, types)]
    instances = _instance_rows(who, model, elements, cells.instance_voxels)
    totals = cells.counts.sum(axis=(0, 1, 2))
    nt = model.atoms.nucleotide_residues
    chains = [(c, model.chain_sequence(c)) for c, (order, _) in model.chain_index.items()
              if len(order) and nt[np.asarray(order, dtype=np.int64)].any()]
    row = who.volume(grid, config.tile.block, rna_chains=[c for c, _ in chains],
                     chain_sequences=[seq for _, seq in chains], n_instances=len(instances), n_tiles=len(tiles),
                     voxels_per_element=[int(v) for v in totals], error=None)
    return {"volume": row, "tiles": tiles, "instances": instances}


def _write_blocks(who: EntryVolumes, grid: VolumeGrid, slabs, config: BuildConfig, n_instances: int) -> CellCounts:
    """Gather the label slabs into z rows of blocks, write each, count cells."""
    B = int(config.tile.block)
    nbz, nby, nbx = blocks_per_axis(grid.shape, B)
    create_volume_arrays(who.root, who.key, (nbz, nby, nbx), B, config.codec, config.compression_level)
    cells = CellCounts(grid.shape, config.tile.cell, n_instances)
    row = {n: np.zeros((nby, nbx, B, B, B), dtype=VOLUME_DTYPES[n]) for n in VOLUME_ARRAYS}  # block order
    r = 0
    for slab in slabs:
        z, d = slab.z0, len(slab.density)
        while d > 0:  # a slab may straddle two block rows
            z_row = z // B
            if z_row != r:
                _flush(who, row, r, B, cells)
                r = z_row
            take = min(d, (r + 1) * B - z)
            src = z - slab.z0
            for n in VOLUME_ARRAYS:
                put_slab(row[n], getattr(slab, n)[src:src + take], z - r * B)
            z, d = z + take, d - take
    _flush(who, row, r, B, cells)
    return cells


def _flush(who: EntryVolumes, row: dict[str, np.ndarray], r: int, B: int, cells: CellCounts) -> None:
    """Write block row ``r``, count its cells, and zero the buffer for the next row."""
    write_block_row(who.root, who.key, r, {n: a.reshape(-1, B, B, B) for n, a in row.items()})
    cells.add(r * B, row["element"], row["instance"])
    for a in row.values():
        a[...] = 0


def _tile_columns(who: EntryVolumes, grid: VolumeGrid, tile: dict) -> dict:
    """A tile of :func:`~rnamotif_data.samples.tiles.tile_table` with the entry's columns."""
    origin = [float(v) for v in grid.point(tile["origin_voxel"])]
    return {"entry": who.key, "pdb_id": who.pdb_id, "emdb_id": who.emdb_id, "resolution": who.resolution,
            "origin_xyz": origin, **tile}


def _instance_rows(who: EntryVolumes, model: Model, elements: ElementAssignment, voxels: np.ndarray) -> list[dict]:
    """``instances.parquet`` rows of the entry, each with the manifest rows of the same residues."""
    by_residues: dict[frozenset, list[int]] = {}
    for i, row in who.rows:
        try:
            sel = row_selection(row)
            if sel is not None:
                by_residues.setdefault(frozenset(int(v) for v in model.resolve(sel)), []).append(int(i))
        except (RNAMotifError, ValueError, KeyError):
            continue  # a row that does not resolve is in failures.parquet already
    out = []
    for inst, rowd in zip(elements.instances, elements.instance_rows()):
        residues = frozenset(r for strand in inst.strands for r in strand)
        out.append(instance_row(entry=who.key, instance=inst.id, element=rowd["element"],
                                motif_type=rowd["motif_type"], sizes=rowd["sizes"], selection=rowd["selection"],
                                broken=rowd["broken"], n_voxels=int(voxels[inst.id]) if inst.id < len(voxels) else 0,
                                manifest_rows=sorted(by_residues.get(residues, []))))
    return out
