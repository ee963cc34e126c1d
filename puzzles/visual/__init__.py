"""Visual Sudoku: a CNN reads handwritten given digits, a SAT layer solves, trained end to end.

Modules: ``digits`` (bundled sklearn digits or a local file, disjoint pools), ``boards``
(rendering puzzles), ``data`` (a run's boards), ``model`` (CNN + layer), ``grounding``
(cluster pretraining without labels), ``run`` (training), ``evaluate`` (the final
measurements), ``picture`` (a PNG of test boards), ``cli`` (``python -m puzzles.train
visual-sudoku``).
"""

from .boards import VisualBoards, render_boards
from .data import VisualData, make_data
from .digits import DigitImages, load_digit_images, split_pools
from .model import DigitCNN, VisualSudoku, build_model
from .run import VisualSettings, train_visual

__all__ = ["DigitCNN", "DigitImages", "VisualBoards", "VisualData", "VisualSettings", "VisualSudoku",
           "build_model", "load_digit_images", "make_data", "render_boards", "split_pools", "train_visual"]
