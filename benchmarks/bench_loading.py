"""How fast a folder of phone photos loads: first load, cached load, and the plain way, with peak memory.

On a generated folder of colour JPEGs of 1 to 2 megapixels (``scripts/make_photos.py``:
10 classes, objects off centre, mixed sizes, portrait and landscape, some stored
on their side with an EXIF orientation), each way of loading runs in a fresh
process, which reports its wall time and its peak resident memory:

- ``plain``: what a straightforward loader does (and what nnfs did before): one file
  after the other in one thread, every JPEG decoded at full resolution, turned
  upright, converted, and resized to 64x64 in one bilinear pass (the same crop as
  nnfs's, without its shortcuts);
- ``draft``: nnfs's loader on one thread, no cache: the gain of decoding JPEGs at a
  reduced scale alone;
- ``first``: ``ImageFolder`` as the training program uses it, a thread per core and
  an empty cache: what the first run on a folder costs (the cache is written);
- ``cached``: the same again: what every later run costs.

The files are read once before timing, so that every way finds them in the
operating system's cache and the figures are decoding, not the disk. Rounds are
interleaved (``--repeat``); the medians are reported, and the ratios within each
round, which is what to trust on a machine shared with other work (a round where
another job holds a core shows the threads gaining nothing). ``peak MiB`` is the process's maximum resident
set; ``base MiB`` that of the same process before loading (Python, NumPy, Pillow);
``cpu s`` the processor time of all its threads, which a busy machine does not
inflate as much as the wall time.

Usage::

    python benchmarks/bench_loading.py                      # 2,000 photos in /tmp/nnfs-photos
    python benchmarks/bench_loading.py --count 200 --repeat 1 --json
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # measure the nnfs of this checkout, installed or not
sys.path.insert(0, os.path.join(ROOT, "scripts"))
METHODS = ("plain", "draft", "first", "cached")
SIZE = 64


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mib():
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 20


def measure(method, folder, cache):
    """Load ``folder`` the way ``method`` says, in this process; returns the figures as a dict."""
    from nnfs.backend.images import empty_images, put_image
    from nnfs.data import ImageFolder
    from PIL import Image

    from nnfs.data.images import convert, is_image_file, open_image

    base = peak_mib()
    start, cpu = time.perf_counter(), cpu_seconds()
    if method == "plain":
        paths = sorted(os.path.join(d, name) for d, _, names in os.walk(folder) for name in names
                       if is_image_file(name))
        images = empty_images(len(paths), 3, SIZE, SIZE)
        for index, path in enumerate(paths):
            image = convert(open_image(path), 3)
            width, height = image.size
            side = min(width, height)  # the middle square, as resize="crop" keeps
            box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
            put_image(images, index, image.resize((SIZE, SIZE), Image.BILINEAR, box=box).tobytes())
        count = len(paths)
    else:
        data = ImageFolder(folder, image_size=SIZE, channels=3, workers=1 if method == "draft" else None,
                           cache=None if method == "draft" else cache)
        images, count = data.images, len(data)
        assert data.from_cache == (method == "cached"), "the cache did not behave as planned"
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {"method": method, "seconds": seconds, "cpu_seconds": cpu, "images": count, "peak_mib": peak_mib(),
            "base_mib": base, "dataset_mib": images.nbytes / 2 ** 20}


def run_method(method, folder, cache):
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", method, "--folder", folder,
                           "--cache", cache], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def ensure_folder(folder, count, sizes):
    """Generate the photos unless ``folder`` already holds exactly that many (kept between runs)."""
    from make_photos import PHONE_SIZES, make_photos

    marker = os.path.join(folder, ".generated")
    wanted = f"{count} {sizes}"
    if os.path.exists(marker) and open(marker).read() == wanted:
        return
    shutil.rmtree(folder, ignore_errors=True)
    chosen = PHONE_SIZES if sizes == "phone" else [tuple(int(v) for v in s.split("x")) for s in sizes.split(",")]
    start = time.perf_counter()
    make_photos(folder, per_class=count // 10, n_classes=10, sizes=chosen)
    with open(marker, "w") as file:
        file.write(wanted)
    print(f"generated {count // 10 * 10} photos in {folder} in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)


def warm(folder):
    """Read every file once, so the timed loads find them in the OS cache."""
    total = 0
    for directory, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(directory, name), "rb") as file:
                total += len(file.read())
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(), "nnfs-photos"),
                        help="the photo folder, generated there if missing (default /tmp/nnfs-photos)")
    parser.add_argument("--count", type=int, default=2000, help="photos to generate (default 2000)")
    parser.add_argument("--sizes", default="phone",
                        help="WxH,WxH,... of the generated photos (default: phone sizes of 1-2 MP)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--measure", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # a child process: one load, figures on stdout
        print(json.dumps(measure(args.measure, args.folder, args.cache)))
        return 0

    ensure_folder(args.folder, args.count, args.sizes)
    folder_bytes = warm(args.folder)
    rounds = {method: [] for method in METHODS}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="nnfs-bench-cache-") as cache:
            for method in METHODS:  # "cached" after "first", in the same empty-at-first cache
                rounds[method].append(run_method(method, args.folder, cache))
    rows = []
    for method in METHODS:
        runs = rounds[method]
        rows.append({"method": method, "seconds": statistics.median(r["seconds"] for r in runs),
                     "all_seconds": [round(r["seconds"], 4) for r in runs],
                     "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
                     "peak_mib": max(r["peak_mib"] for r in runs), "base_mib": runs[0]["base_mib"],
                     "dataset_mib": runs[0]["dataset_mib"], "images": runs[0]["images"]})
    by = {row["method"]: row for row in rows}
    report = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "folder": args.folder, "images": by["plain"]["images"], "folder_mib": folder_bytes / 2 ** 20,
        "repeat": args.repeat, "rows": rows,
        "first_vs_plain": by["plain"]["seconds"] / by["first"]["seconds"],
        "cached_vs_first": by["first"]["seconds"] / by["cached"]["seconds"],
        # The same ratios within each round (the runs of one round are minutes apart at most).
        "first_vs_plain_by_round": [p["seconds"] / f["seconds"] for p, f in zip(rounds["plain"], rounds["first"])],
        "cached_vs_first_by_round": [f["seconds"] / c["seconds"] for f, c in zip(rounds["first"], rounds["cached"])],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['images']} photos ({report['folder_mib']:.0f} MiB of JPEG) to {SIZE}x{SIZE}x3, "
          f"{report['cpus']} CPUs, load {report['load_average']}, {report['date']}")
    print(f"{'method':<8} {'seconds':>9} {'cpu s':>8} {'img/s':>9} {'peak MiB':>9} {'base MiB':>9} "
          f"{'dataset MiB':>12}")
    for row in rows:
        print(f"{row['method']:<8} {row['seconds']:>9.3f} {row['cpu_seconds']:>8.2f} "
              f"{row['images'] / row['seconds']:>9.0f} "
              f"{row['peak_mib']:>9.0f} {row['base_mib']:>9.0f} {row['dataset_mib']:>12.1f}")
    print(f"first load {report['first_vs_plain']:.1f}x faster than plain; "
          f"cached load {report['cached_vs_first']:.1f}x faster than the first (medians)")
    print("by round: first vs plain " + ", ".join(f"{r:.1f}x" for r in report["first_vs_plain_by_round"])
          + "; cached vs first " + ", ".join(f"{r:.0f}x" for r in report["cached_vs_first_by_round"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
