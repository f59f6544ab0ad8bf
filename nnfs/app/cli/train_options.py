"""The training program's options: the parser, the checks between options, and the model's recipe.

:func:`parse_args` reads a command line into a Namespace whose ``given`` is the set of
options the line gave (a resumed run tells them from defaults, even one given at its
default value). What the line leaves out, the model's recipe fills in once the data
has chosen the model (:func:`apply_recipe`); docs/cli.md lists every option.
"""

import argparse
import os

from nnfs.app.cli.options import (
    OptionError, Parser, environment_epilog, file_path, folder_path, fraction, given_options, image_size,
    non_negative_float, non_negative_int, positive_float, positive_int, seed, unit_interval)
from nnfs.app.cli.outputs import metadata_or_none, resumed_run_files
from nnfs.app.models import MODELS, RECIPES
from nnfs.data import AUGMENTATIONS, RESIZE_MODES, DatasetError, augmentation_for, default_cache_dir
from nnfs.optim import SCHEDULES

__all__ = ["DEFAULT_DATASET", "DEFAULT_LR", "DEFAULT_MOMENTUM", "build_parser", "parse_args", "options_given",
           "keep_resumed_files", "check_training_options", "apply_recipe", "augment_spec"]

# The shipped digits, in a checkout: <repo>/data/digits beside the nnfs package.
DEFAULT_DATASET = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir, "data", "digits"))
# SGD with momentum 0.9 at lr 0.01 reached >= 97 % on every split seed we tried (0-3) on the
# shipped digits; plain SGD at lr 0.05 dipped to 96.2 % on one of them.
DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001}
DEFAULT_MOMENTUM = 0.9


def build_parser(suppress_defaults=False):
    """The training program's options, each with its help text and default; with
    ``suppress_defaults``, none has a default (:func:`~nnfs.app.cli.options.given_options`)."""
    parser = Parser(
        suppress_defaults=suppress_defaults,
        # A stray path on the command line: a folder is the dataset, a file a run to go on with.
        path_options=(("--dataset", "a dataset folder", os.path.isdir),
                      ("--resume", "a checkpoint to go on training from", os.path.isfile)),
        description="Train an image classifier on a folder of images (one subfolder "
        "per class) and save the best model.", epilog=environment_epilog(
            "NNFS_BACKEND", "NNFS_DTYPE", "NNFS_NUM_THREADS", "NNFS_TRANSPORT", "NNFS_CACHE_DIR",
            "NNFS_MEMORY_LIMIT", "NNFS_KEEP_FREED_MEMORY", "OPENBLAS_NUM_THREADS"))
    parser.add_argument("--dataset", type=folder_path, default=DEFAULT_DATASET,
                        help="folder with one subfolder of images per class (default: the digits in "
                             "data/digits of a repository checkout)")
    parser.add_argument("--model", choices=tuple(MODELS), default=None,
                        help="the network: cnn (the reference CNN) or resnet (a small residual network) "
                             "(default: resnet for photos, cnn for small images such as the digits; "
                             "when resuming, the checkpoint's)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="passes over the training images, in all when resuming (default: 10 for "
                             "cnn, 50 for resnet; with --resume, the run's)")
    parser.add_argument("--batch_size", type=positive_int, default=32,
                        help="images per optimizer step (the global batch when data parallel)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="learning rate (default: 0.01 for sgd, 0.001 for adam and adamw; 0.003 for "
                             "adam on resnet)")
    parser.add_argument("--optimizer", choices=tuple(DEFAULT_LR), default=None,
                        help="sgd (with momentum), adam, or adamw (decoupled weight decay) (default: sgd "
                             "for cnn, adam for resnet)")
    parser.add_argument("--momentum", type=unit_interval, default=None,
                        help=f"SGD momentum (default: {DEFAULT_MOMENTUM}; 0 for plain SGD)")
    parser.add_argument("--weight_decay", type=non_negative_float, default=0.0,
                        help="L2 penalty (decoupled for adamw)")
    parser.add_argument("--schedule", choices=tuple(SCHEDULES), default=None,
                        help="learning rate per epoch: constant, step (divided by 10 after each "
                             "third of the epochs after the warm-up; 7 epochs: 3, 2, 2) or cosine (annealed "
                             "to 0) (default: constant for cnn, cosine for resnet)")
    parser.add_argument("--warmup_epochs", type=non_negative_int, default=0,
                        help="epochs of linear learning-rate warm-up before the schedule")
    parser.add_argument("--image_size", type=image_size, default=None,
                        help="bring every image to SIZE or HxW (default: the folder's common size when it "
                             "is small, else 64x64; the exact rule is in docs/data.md)")
    parser.add_argument("--resize", choices=RESIZE_MODES, default="crop",
                        help="how images of another aspect ratio reach that size: crop (keep the "
                             "aspect ratio, cut the overhang) or stretch (default: crop)")
    parser.add_argument("--augment", type=augment_spec, default="auto",
                        help="random changes to the training images: auto (crop,flip for photos, none "
                             "for small images such as digits), none, or some of "
                             f"{','.join(AUGMENTATIONS)} joined by commas")
    parser.add_argument("--cache", type=folder_path, default=default_cache_dir(),
                        help="folder that keeps decoded datasets between runs, or none "
                             "(default: %(default)s)")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="threads decoding the images (default: one per core, at most 32; fewer where "
                             "memory is short)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None,
                        help="1 or 3 (default: 1 if every image is grayscale, else 3)")
    parser.add_argument("--val_split", type=fraction, default=0.1,
                        help="share of each class held out for validation")
    parser.add_argument("--seed", type=seed, default=0, help="seeds the split, the shuffling and the weights")
    parser.add_argument("--save", type=file_path, default=os.path.join("runs", "cnn.npz"),
                        help="checkpoint of the best epoch; the latest state, the metrics CSV and the "
                             "confusion matrix go beside it (default: %(default)s; with --resume of a run, "
                             "that run's own)")
    parser.add_argument("--plot", type=file_path, default=None,
                        help="curves PNG (default: next to the checkpoint)")
    parser.add_argument("--resume", type=file_path, default=None,
                        help="continue the run saved in this checkpoint (weights, optimizer, schedule, "
                             "epoch, shuffling, and the --epochs, --batch_size, --seed, --val_split and --limit "
                             "left out); up to --epochs in all (default: a new run)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use at most this many images per class, for quick tries (default: all)")
    parser.add_argument("--skip_corrupt", action="store_true",
                        help="skip unreadable images with a warning instead of stopping")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads of the training steps (default: NNFS_NUM_THREADS, else every core, "
                             "shared among the MPI ranks of a machine); 1 runs single-threaded")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel training over MPI ranks (on by itself under mpiexec); "
                             "--batch_size is then the global batch, split across the ranks")
    return parser


def parse_args(argv):
    """The options of ``argv``, checked, with ``given``: the set of those ``argv`` gives (a
    resumed run tells them from defaults, even one given at its default value)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = given_options(build_parser(suppress_defaults=True), argv)
    try:
        check_training_options(args)
    except OptionError as error:
        parser.error(str(error))
    keep_resumed_files(args)
    return args


def keep_resumed_files(args):
    """Without ``--save``, a ``--resume`` of a run writes that run's files: ``--resume
    runs/m_last.npz`` saves to ``runs/m.npz`` and ``runs/m_last.npz``, not to the default
    ``runs/cnn.npz``, which may hold another run's model (it was replaced there, and with no
    better epoch the report read that other model as this run's best). Which files those are
    is :func:`~nnfs.app.cli.outputs.resumed_run_files`' rule; where it cannot tell (weights
    only, a latest state copied under another name), the default files apply and the
    checks before training (:func:`~nnfs.app.cli.outputs.clashing_outputs`,
    :func:`~nnfs.app.cli.train.earlier_model`) say what they would replace. A checkpoint that cannot be read
    leaves ``--save`` alone; reading it for the resume says why.
    """
    if not args.resume or "save" in options_given(args):
        return
    args.save = resumed_run_files(args.resume, metadata_or_none(args.resume)) or args.save


def options_given(args):
    """The options the command line gave: ``args.given`` from :func:`parse_args`, else (a
    Namespace from ``build_parser().parse_args()``, or made by hand) those not at their default."""
    given = getattr(args, "given", None)
    if given is not None:
        return given
    parser = build_parser()
    return {name for name, value in vars(args).items() if value != parser.get_default(name)}


def check_training_options(args):
    """The options that must agree with each other, as far as they are known (the model's
    recipe fills the rest later, see :func:`apply_recipe`); an OptionError for the first clash."""
    if args.momentum is not None and args.optimizer not in (None, "sgd"):
        raise OptionError(f"--momentum applies to --optimizer sgd only, not {args.optimizer}")
    if args.warmup_epochs and args.epochs is not None and args.warmup_epochs >= args.epochs:
        raise OptionError(f"--warmup_epochs ({args.warmup_epochs}) must be less than --epochs ({args.epochs})")


def apply_recipe(args, model):
    """Fill the training options the command line left out from the model's recipe
    (:data:`~nnfs.app.models.RECIPES`), then the optimizer's defaults; returns ``args``.

    Raises:
        OptionError: when a given option does not fit the recipe's (``--momentum`` with Adam,
            ``--warmup_epochs`` not below the recipe's epochs).
    """
    recipe = RECIPES[model]
    chosen_optimizer = args.optimizer is None
    for option in ("optimizer", "epochs", "schedule"):
        if getattr(args, option) is None:
            setattr(args, option, recipe[option])
    if args.lr is None:
        # The recipe's rate belongs to its optimizer; another optimizer keeps its own default.
        args.lr = recipe["lr"] if "lr" in recipe and args.optimizer == recipe["optimizer"] else DEFAULT_LR[args.optimizer]
    if args.momentum is None and args.optimizer == "sgd":
        args.momentum = DEFAULT_MOMENTUM
    if chosen_optimizer and args.momentum is not None and args.optimizer != "sgd":
        raise OptionError(f"--momentum applies to --optimizer sgd only; --model {model} trains with "
                          f"{args.optimizer} unless you give --optimizer sgd")
    check_training_options(args)
    return args


def augment_spec(text):
    """An ``--augment`` value: ``auto``, ``none`` or operations joined by commas."""
    if text.strip().lower() not in ("auto", "none"):
        try:
            augmentation_for(text, "photos")
        except DatasetError:
            raise argparse.ArgumentTypeError(
                f"expected auto, none or some of {','.join(AUGMENTATIONS)} joined by commas, "
                f"got {text!r}") from None
    return text.strip().lower()
