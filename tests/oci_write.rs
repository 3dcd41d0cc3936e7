//! The writers of part 13 (layers, configs, manifests) and the blob transfers, on the real stack.
