"""The tiles section of ``rnamotif report`` (a store built with ``--tiles``): what the whole-map
volumes hold, and a picture of one tile.

* counts: entries with volumes (and why the others have none), tiles, RNA tiles, the
  RNA-free share, clipped tiles; voxels per element (share of the labelled voxels); loop
  instances by element and fine type, and how many match a manifest row;
* ``tile.png``: the tile with the most loop voxels (hairpin, bulge, internal, junction),
  its z plane with the most of them: the density (grey, normalised) beside the element
  labels (one colour per element, legend) of the same plane, axes in Å from the tile
  origin, the tile's entry and origin in the title.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rnamotif_data.common.extras import require
from rnamotif_data.learn.segreport import ELEMENT_COLOURS
from rnamotif_data.rna.elements import ELEMENT_NAMES
from rnamotif_data.storage.checksums import read_checksums
from rnamotif_data.storage.layout import join, read_table, url_to_fs
from rnamotif_data.storage.volumes import INSTANCES_FILE, TILES_FILE, VOLUMES, VOLUMES_FILE, VolumeReader

__all__ = ["has_tiles", "tiles_section", "plot_tile"]

_LOOPS = (2, 3, 4, 5)


def has_tiles(root: str) -> bool:
    """Whether the store at ``root`` was built with ``--tiles``."""
    fs, path = url_to_fs(join(root, TILES_FILE))
    return bool(fs.exists(path))


def _tables(root: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return tuple(read_table(join(root, f)).to_pandas() for f in (VOLUMES_FILE, TILES_FILE, INSTANCES_FILE))  # type: ignore[return-value]


def plot_tile(root: str, path: Path) -> str | None:
    """Draw ``tile.png`` (module docstring) at ``path``; returns the caption, or None for a
    store without a tile holding a loop."""
    matplotlib = require("matplotlib", "the report's tile figure")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "the report's tile figure")
    ListedColormap = require("matplotlib.colors", "the report's tile figure").ListedColormap

    volumes, tiles, _ = _tables(root)
    if not len(tiles):
        return None
    loops = np.stack(list(tiles["voxels_per_element"]))[:, list(_LOOPS)].sum(axis=1)
    best = tiles.iloc[int(np.argmax(loops))]
    row = volumes.set_index("entry").loc[best["entry"]]
    prefix = f"{VOLUMES}/{best['entry']}/"
    sums = {k[len(prefix):]: v for k, v in read_checksums(root).items() if k.startswith(prefix)}
    reader = VolumeReader(root, str(best["entry"]), [int(v) for v in row["grid_shape"]], int(row["block"]), sums)
    box = reader.read_box([int(v) for v in best["origin_voxel"]], int(best["size"]), ("density", "element"))
    reader.close()
    z = int(np.argmax(np.isin(box["element"], _LOOPS).sum(axis=(1, 2))))
    size = int(best["size"])
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.6))
    extent = (0, size, size, 0)
    axes[0].imshow(box["density"][z].astype(np.float32), cmap="gray", vmin=0, vmax=1, extent=extent)
    axes[0].set_title("density (normalised)")
    cmap = ListedColormap(ELEMENT_COLOURS)
    axes[1].imshow(box["element"][z], cmap=cmap, vmin=-0.5, vmax=len(ELEMENT_NAMES) - 0.5, extent=extent,
                   interpolation="nearest")
    axes[1].set_title("element labels")
    for ax in axes:
        ax.set_xlabel("x (Å from the tile origin)")
        ax.set_ylabel("y (Å)")
    present = sorted(set(np.unique(box["element"][z]).tolist()) - {0})
    handles = [plt.Rectangle((0, 0), 1, 1, color=ELEMENT_COLOURS[i]) for i in present]
    axes[1].legend(handles, [ELEMENT_NAMES[i] for i in present], loc="upper left", bbox_to_anchor=(1.02, 1),
                   fontsize=8, frameon=False)
    origin = ", ".join(f"{v:.0f}" for v in best["origin_xyz"])
    caption = (f"{best['entry']}, tile {[int(v) for v in best['tile_zyx']]} (origin x-y-z {origin} Å), plane z = {z}: "
               f"the tile with the most loop voxels ({int(loops.max())})")
    fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return caption


def tiles_section(root: str, png: Path | None) -> list[str]:
    """Markdown lines of the tiles section (module docstring), with ``tile.png`` at ``png``."""
    volumes, tiles, instances = _tables(root)
    ok = volumes[volumes["error"].isna()]
    lines = [f"{len(ok)} of {len(volumes)} entries have volumes; {len(tiles)} tiles of "
             f"{int(tiles['size'].iloc[0]) if len(tiles) else 0}³ voxels, {int(tiles['holds_rna'].sum())} holding RNA, "
             f"{int((~tiles['holds_rna']).sum())} RNA-free, {int(tiles['clipped'].sum())} clipped at a map's edge.", ""]
    if len(ok):
        totals = np.stack(list(ok["voxels_per_element"])).sum(axis=0)
        labelled = max(int(totals[1:].sum()), 1)
        lines += ["| element | voxels | share of labelled voxels |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {int(totals[i])} | {totals[i] / labelled:.1%} |"
                  for i, name in enumerate(ELEMENT_NAMES) if i]
        lines.append("")
    if len(instances):
        by = instances.groupby("element").agg(n=("instance", "size"), typed=("motif_type", "count"),
                                              in_manifest=("manifest_rows", lambda s: int(sum(len(x) > 0 for x in s))))
        lines += ["| loop element | instances | with a fine type | matching a manifest row |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {e} | {r.n} | {r.typed} | {r.in_manifest} |" for e, r in by.iterrows()]
        lines.append("")
    for r in volumes[volumes["error"].notna()].itertuples():
        lines.append(f"- no volumes: {r.error}")
    if png is not None:
        caption = plot_tile(root, png)
        if caption:
            lines += ["", f"![one tile]({png.name})", "", caption + "."]
    return lines
