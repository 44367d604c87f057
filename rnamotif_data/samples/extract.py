"""Segment and label one motif from a map and a model.

Usage::

    rnamotif segment --map MAP --model MODEL SELECTION [SELECTION ...] \\
        --motif-type TYPE --out DIR [--masked-mrc] [config flags]

Writes into DIR, all on one grid (z-y-x, ORIGIN set, ``mrcfile.validate`` clean):
``density.mrc`` (normalised density), ``zone.mrc``, ``labels.mrc``, ``nucleotide.mrc``,
and ``motif.json`` (selection, residues found, sequence, centroid, cube origin, voxel
size, map statistics, fit_z). ``--masked-mrc`` also writes ``masked.mrc``: the raw map
within the zone, cropped to the zone's bounding box, on the original grid (upstream
style).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.common.version import __version__
from rnamotif_data.em.maps import read_map, write_map
from rnamotif_data.em.quality import fit_z
from rnamotif_data.errors import RNAMotifError, SelectionError
from rnamotif_data.rna.motifs import FINE_TYPES, class_index, layout_mismatch, motif_class
from rnamotif_data.rna.structure import parse_selection, read_model
from rnamotif_data.samples.cubes import SegmentConfig, cut_motif, zone_crop

log = logging.getLogger("rnamotif_data.samples.extract")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of ``rnamotif segment``."""
    p = argparse.ArgumentParser(
        prog="rnamotif segment",
        description="Cut, normalise and label the density cube of one RNA motif.",
    )
    p.add_argument("--map", required=True, type=Path, help="MRC/CCP4 map (.mrc/.map/.ccp4, optionally .gz/.bz2)")
    p.add_argument("--model", required=True, type=Path, help="fitted model (PDB or mmCIF, optionally .gz)")
    p.add_argument("selection", nargs="+", help="residues, e.g. J:85-91 or A:1490-1495,1424-1429 B:5")
    p.add_argument("--motif-type", required=True, choices=FINE_TYPES + ("unknown",), metavar="TYPE",
                   help="fine motif type: " + ", ".join(FINE_TYPES))
    p.add_argument("--out", required=True, type=Path, help="output directory (created)")
    p.add_argument("--masked-mrc", action="store_true",
                   help="also write masked.mrc: raw map in the zone, cropped, original grid")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the output files of an earlier run in --out (other files are never touched)")
    add_config_arguments(p, SegmentConfig)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    config = config_from_args(args, SegmentConfig)
    out: Path = args.out
    outputs = [f"{n}.mrc" for n in ("density", "zone", "labels", "nucleotide")] + ["motif.json"]
    outputs += ["masked.mrc"] if args.masked_mrc else []
    if out.exists() and not out.is_dir():
        raise RNAMotifError(f"--out {out}: exists and is not a folder")
    existing = [name for name in outputs if (out / name).exists()]
    if existing and not args.overwrite:  # checked before any work: nothing is written
        raise RNAMotifError(f"--out {out}: already holds {', '.join(existing)}; pass --overwrite to replace them "
                            "or choose another folder")
    selection = parse_selection(args.selection)
    model = read_model(args.model)
    if args.motif_type != "unknown":  # the strands must fit the type, listed with one or two closing pairs
        why = layout_mismatch([len(s) for s in model.strands(model.resolve(selection))], args.motif_type,
                              flank_pairs=(1, 2))
        if why:
            raise SelectionError(f"{model.name} {selection}: {why}")
    motif = model.select(selection)
    density_map = read_map(args.map)
    stats = density_map.statistics(config.normalise_percentile)
    cube = cut_motif(density_map, motif, config, context=model.atoms, stats=stats,
                         description=f"{model.name} {selection}")
    z = fit_z(density_map, motif.xyz, stats)

    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, arr in (("density", cube.density), ("zone", cube.zone),
                      ("labels", cube.labels), ("nucleotide", cube.nucleotide)):
        files[name] = write_map(out / f"{name}.mrc", arr, cube.voxel_size, cube.origin).name
    if args.masked_mrc:
        masked, m_origin = zone_crop(density_map, motif.xyz, config.zone_radius)
        files["masked"] = write_map(out / "masked.mrc", masked, density_map.voxel_size, m_origin).name

    record = {
        "entry": model.name,
        "map": str(args.map),
        "model": str(args.model),
        "selection": selection.text,
        "motif_type": args.motif_type,
        "motif_class": motif_class(args.motif_type),
        "class_index": class_index(args.motif_type),
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
        model.name, selection, args.motif_type, record["sequence"], cube.n_atoms, z,
        100 * cube.fraction_outside, out,
    )
    return 0
