"""Segment and label one motif from a map and a model.

:func:`extract_motif` (the work of ``rnamotif segment``) writes into a folder, all on one
grid (z-y-x, ORIGIN set, ``mrcfile.validate`` clean): ``density.mrc`` (normalised density),
``zone.mrc``, ``labels.mrc``, ``nucleotide.mrc``, and ``motif.json`` (selection, residues found, sequence, centroid, cube origin, voxel
size, map statistics, fit_z). ``masked_mrc=True`` also writes ``masked.mrc``: the raw map
within the zone, cropped to the zone's bounding box, on the original grid (upstream
style).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rnamotif_data.common.version import __version__
from rnamotif_data.em.maps import read_map, write_map
from rnamotif_data.em.quality import fit_z
from rnamotif_data.errors import RNAMotifError, SelectionError
from rnamotif_data.rna.motifs import class_index, layout_mismatch, motif_class
from rnamotif_data.rna.structure import parse_selection, read_model
from rnamotif_data.samples.cubes import SegmentConfig, cut_motif, zone_crop

log = logging.getLogger("rnamotif_data.samples.extract")

__all__ = ["extract_motif"]


def _check_out(out: Path, masked_mrc: bool, overwrite: bool) -> None:
    """Refuse an ``out`` that is a file, or that holds output files without ``overwrite``
    (checked before any work: nothing is written)."""
    outputs = [f"{n}.mrc" for n in ("density", "zone", "labels", "nucleotide")] + ["motif.json"]
    outputs += ["masked.mrc"] if masked_mrc else []
    if out.exists() and not out.is_dir():
        raise RNAMotifError(f"--out {out}: exists and is not a folder")
    existing = [name for name in outputs if (out / name).exists()]
    if existing and not overwrite:
        raise RNAMotifError(f"--out {out}: already holds {', '.join(existing)}; pass --overwrite to replace them "
                            "or choose another folder")


def _write_maps(out: Path, cube, density_map, masked_xyz, zone_radius: float) -> dict[str, str]:
    """Write the cube's four maps (and, given the motif's atoms ``masked_xyz``, the raw map in
    its zone) into ``out``; returns ``{name: file name}``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, arr in (("density", cube.density), ("zone", cube.zone),
                      ("labels", cube.labels), ("nucleotide", cube.nucleotide)):
        files[name] = write_map(out / f"{name}.mrc", arr, cube.voxel_size, cube.origin).name
    if masked_xyz is not None:
        masked, m_origin = zone_crop(density_map, masked_xyz, zone_radius)
        files["masked"] = write_map(out / "masked.mrc", masked, density_map.voxel_size, m_origin).name
    return files


def extract_motif(map_path: Path, model_path: Path, selection_text: list[str] | str, motif_type: str, out: Path,
                  config: SegmentConfig = SegmentConfig(), *, masked_mrc: bool = False,
                  overwrite: bool = False) -> dict:
    """Cut, normalise and label one motif's cube and write it into ``out`` (the files of the
    module docstring); returns the ``motif.json`` record.

    ``selection_text``: residues, e.g. ``"J:85-91"`` or ``["A:1490-1495,1424-1429", "B:5"]``;
    ``motif_type``: a fine type (:data:`~rnamotif_data.rna.motifs.FINE_TYPES`) or ``"unknown"``.

    Raises
    ------
    rnamotif_data.errors.RNAMotifError
        ``out`` is a file, or already holds output files and ``overwrite`` is False (checked
        before any work: nothing is written).
    rnamotif_data.errors.SelectionError
        The strands of the selection do not fit ``motif_type``.
    """
    out = Path(out)
    _check_out(out, masked_mrc, overwrite)
    selection = parse_selection(selection_text)
    model = read_model(model_path)
    if motif_type != "unknown":  # the strands must fit the type, listed with one or two closing pairs
        why = layout_mismatch([len(s) for s in model.strands(model.resolve(selection))], motif_type,
                              flank_pairs=(1, 2))
        if why:
            raise SelectionError(f"{model.name} {selection}: {why}")
    motif = model.select(selection)
    density_map = read_map(map_path)
    stats = density_map.statistics(config.normalise_percentile)
    cube = cut_motif(density_map, motif, config, context=model.atoms, stats=stats,
                         description=f"{model.name} {selection}")
    z = fit_z(density_map, motif.xyz, stats)

    files = _write_maps(out, cube, density_map, motif.xyz if masked_mrc else None, config.zone_radius)
    record = {
        "entry": model.name,
        "map": str(map_path),
        "model": str(model_path),
        "selection": selection.text,
        "motif_type": motif_type,
        "motif_class": motif_class(motif_type),
        "class_index": class_index(motif_type),
        "residues": [
            {"chain": r.chain, "seq_num": r.seq_num, "icode": r.icode, "name": n}
            for r, n in zip(motif.residues, motif.residue_names)
        ],
        "sequence": motif.sequence(config.modified_as_parent),
        "n_atoms": cube.n_atoms,
        "centroid_xyz": cube.centroid.tolist(),
        "cube_origin_xyz": cube.origin.tolist(),
        "cube_shape_zyx": list(config.shape),
        "voxel_size": cube.voxel_size,
        "fraction_outside": cube.fraction_outside,
        "fit_z": z,
        "map_statistics": stats.to_dict(),
        "map_voxel_size_xyz": density_map.voxel_size.tolist(),
        "map_origin_xyz": density_map.origin.tolist(),
        "map_shape_zyx": list(density_map.shape),
        "zone_voxels": int(cube.zone.sum()),
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "files": files,
        "rnamotif_data_version": __version__,
    }
    (out / "motif.json").write_text(json.dumps(record, indent=2) + "\n")
    log.info(
        "%s %s (%s, %s): %d atoms, fit_z %.2f, %.0f%% of cube outside map -> %s",
        model.name, selection, motif_type, record["sequence"], cube.n_atoms, z,
        100 * cube.fraction_outside, out,
    )
    return record
