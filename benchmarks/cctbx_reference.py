"""Reference CC_mask / Q-score from cctbx (Phenix's engine) for a map and model.

Runs in an environment with ``cctbx-base`` (a dev/bench-only reference, not a runtime
dependency): ``python -m venv /tmp/cctbx && /tmp/cctbx/bin/pip install cctbx-base==2025.11``.
``benchmarks/validate_quality.py`` calls it as a subprocess; run alone it prints JSON::

    /tmp/cctbx/bin/python benchmarks/cctbx_reference.py MAP MODEL RESOLUTION [--qscore]

CC_mask, CC_volume and CC_peaks are ``mmtbx.maps.map_model_cc`` (the engine behind
``phenix.map_model_cc``; Afonine et al. 2018, doi:10.1107/S2059798318009324) with its
defaults (electron scattering table, the atoms' B-factors); Q-score is
``cctbx.maptbx.qscore.calc_qscore`` with its program defaults (motif mean over atoms).
"""

import json
import sys

from iotbx.data_manager import DataManager
from iotbx.map_model_manager import map_model_manager
from mmtbx.maps import map_model_cc


def main(argv):
    map_file, model_file, resolution = argv[0], argv[1], float(argv[2])
    dm = DataManager()
    mm = dm.get_real_map(map_file)
    model = dm.get_model(model_file)
    mmm = map_model_manager(model=model, map_manager=mm, ignore_symmetry_conflicts=True)
    params = map_model_cc.master_params().extract()
    params.map_model_cc.resolution = resolution
    task = map_model_cc.map_model_cc(
        map_data=mmm.map_manager().map_data(), pdb_hierarchy=mmm.model().get_hierarchy(),
        crystal_symmetry=mmm.map_manager().crystal_symmetry(), params=params.map_model_cc)
    task.validate()
    task.run()
    r = task.get_results()
    out = {"cc_mask": r.cc_mask, "cc_volume": r.cc_volume, "cc_peaks": r.cc_peaks}
    if "--qscore" in argv:
        import numpy as np
        from cctbx.maptbx.qscore import calc_qscore

        # the cctbx qscore program's defaults: 32 probes, 20 shells 0.1-2.0 Å, rtol 0.9
        shells = list(np.linspace(0.1, 2.0, 20, endpoint=True))
        q = calc_qscore(mmm, shells=shells, n_probes=32, rtol=0.9)["qscore_per_atom"]
        out["q_score"] = float(sum(q) / len(q))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
