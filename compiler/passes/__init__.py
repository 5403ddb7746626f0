"""The optimization passes, one module each: prune, fold, simplify, cse, expand, fuse."""
