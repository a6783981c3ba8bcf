"""Write eqx_mp/so3/data/quadrature_grids.npz: the Lebedev and Delley grids of e3x 1.0.2.

The rules are published tables of points and weights (V. I. Lebedev and D. N. Laikov, Doklady
Mathematics 59, 477 (1999); B. Delley, J. Comput. Chem. 17, 1152 (1996)); e3x (Apache-2.0)
ships them as ``e3x/so3/_lebedev_grids.npz`` and ``_delley_grids.npz``. This script copies the
arrays unchanged (float64) into one compressed file so that eqx_mp needs no e3x at run time.
Run once with the ``e3x`` extra installed:

    python scripts/export_quadrature_grids.py
"""

import io
import pkgutil
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "eqx_mp" / "so3" / "data" / "quadrature_grids.npz"


def main() -> None:
    arrays = {}
    for kind in ("lebedev", "delley"):
        raw = pkgutil.get_data("e3x.so3", f"_{kind}_grids.npz")
        with np.load(io.BytesIO(raw)) as grids:
            precision, num = grids["precision"], grids["num"]
            arrays[f"{kind}_precision"] = precision.astype(np.int64)
            arrays[f"{kind}_num"] = num.astype(np.int64)
            for i in range(precision.size):
                r, w = grids[f"r{i}"], grids[f"w{i}"]
                assert r.shape == (num[i], 3) and w.shape == (num[i],), (kind, i)
                arrays[f"{kind}_r{i}"] = r.astype(np.float64)
                arrays[f"{kind}_w{i}"] = w.astype(np.float64)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
