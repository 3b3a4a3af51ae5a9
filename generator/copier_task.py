"""copier's task after `copier copy --trust` and `copier update --trust`: record in
.taichu-manifest.json the files copier left exactly as this template renders them, so
that `taichu_serve regenerate` can later update them. It writes nothing else.

Runs with copier's own Python (copier, jinja2 and yaml are there):
`python <template>/generator/copier_task.py DEST`, from the repository or from the
template inside an installed taichu-serve.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(dest: str) -> None:
    root = HERE.parent  # the template root: copier.yml, templates/, protos/
    if (root / "generator" / "regenerate.py").is_file():  # the repository
        sys.path.insert(0, str(root))
        from generator.errors import UserError
        from generator.regenerate import adopt
    else:  # taichu_serve/_template/generator/copier_task.py in a wheel
        sys.path.insert(0, str(root.parent.parent))
        from taichu_serve.errors import UserError  # type: ignore[no-redef,import-untyped,unused-ignore]
        from taichu_serve.regenerate import adopt  # type: ignore[no-redef,import-untyped,unused-ignore]
    try:
        adopt(Path(dest).resolve(), root)
    except UserError as error:
        sys.exit(f"taichu-serve: {error}")


if __name__ == "__main__":
    main(sys.argv[1])
