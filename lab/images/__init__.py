"""The lab's container images: recipes as data, built offline with buildah, cached, pushed to the lab registry.

One directory per image under lab/images/recipes/ (recipe.toml + the files it copies). Each
recipe is cached by a hash of its files, its inputs' pins and its parent's hash in
LAB_CACHE/images/<name>-<hash>/ (an image in skopeo's `dir:` layout + meta.json).
"""
