"""Cut, normalise and label the density cube of one RNA motif.

Usage::

    rnamotif segment --map MAP --model MODEL SELECTION [SELECTION ...] \\
        --motif-type TYPE --out DIR [--masked-mrc] [config flags]

The files written are those of :func:`rnamotif_data.samples.extract.extract_motif`; the
segmentation flags are the fields of :class:`~rnamotif_data.samples.cubes.SegmentConfig`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rnamotif_data.common.cliargs import add_config_arguments, config_from_args
from rnamotif_data.rna.motifs import FINE_TYPES
from rnamotif_data.samples.cubes import SegmentConfig
from rnamotif_data.samples.extract import extract_motif
from rnamotif_data.storage.outputs import claimed_output

__all__ = ["SEGMENT_FILES", "main", "parser"]

#: the files ``rnamotif segment`` owns in its ``--out`` folder (``--overwrite`` replaces
#: only these, and only where a run of ``segment`` wrote them: its marker is there)
SEGMENT_FILES = ("density.mrc", "zone.mrc", "labels.mrc", "nucleotide.mrc", "masked.mrc", "motif.json")


def parser() -> argparse.ArgumentParser:
    """Argument parser of ``rnamotif segment``."""
    p = argparse.ArgumentParser(
        prog="rnamotif segment",
        description=__doc__.split("\n")[0],
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
                   help="replace the output files of an earlier run of segment in --out (a folder holding any other "
                        "file is refused)")
    add_config_arguments(p, SegmentConfig)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    with claimed_output(args.out, "segment", SEGMENT_FILES, mode="replace" if args.overwrite else "new"):
        extract_motif(args.map, args.model, args.selection, args.motif_type, args.out,
                      config_from_args(args, SegmentConfig), masked_mrc=args.masked_mrc, overwrite=args.overwrite)
    return 0
