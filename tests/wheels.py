"""Plugin wheels built on the fly, for tests that install a plugin with pip the way a user would."""

from __future__ import annotations

from pathlib import Path


def build_wheel(out_dir: str | Path, name: str, files: dict[str, str],
                entry_points: dict[str, dict[str, str]], version: str = "0.0.1") -> Path:
    """Write a pure-Python wheel holding ``files`` (path -> source) and ``entry_points`` (group ->
    name -> target), for tests that install a plugin with pip the way a user would."""
    import base64
    import hashlib
    import zipfile

    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    ep_text = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
                      for group, eps in entry_points.items())
    contents = {**files,
                f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: egotask-fixtures\nRoot-Is-Purelib: true\n"
                                 "Tag: py3-none-any\n",
                f"{info}/entry_points.txt": ep_text}

    def digest(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},{digest(text.encode())},{len(text.encode())}\n" for path, text in contents.items())
    path = Path(out_dir) / f"{dist}-{version}-py3-none-any.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as whl:
        for member, text in contents.items():
            whl.writestr(member, text)
        whl.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return path
