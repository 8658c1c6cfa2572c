"""Face counting for the presence signal: OpenCV's Haar cascade or a YuNet model, whichever is available."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from installation.webcam.signals import to_gray

HAAR_FRONTAL_FACE = "haarcascade_frontalface_default.xml"


FaceDetector = Callable[[np.ndarray], int]  # BGR uint8 image -> number of faces.


def find_haar_cascade(name: str = HAAR_FRONTAL_FACE) -> Path | None:
    """Locate a Haar cascade shipped with OpenCV: cv2.data, then next to cv2, then system folders."""
    candidates: list[Path] = []
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", None)
    if folder:
        candidates.append(Path(folder) / name)
    package = Path(cv2.__file__).resolve().parent
    candidates += [package / "data" / name, package.parent / "share" / "opencv4" / "haarcascades" / name]
    for root in ("/usr/share/opencv4", "/usr/local/share/opencv4", "/usr/share/opencv"):
        candidates.append(Path(root) / "haarcascades" / name)
    return next((path for path in candidates if path.is_file()), None)


class HaarFaceDetector:
    """Frontal faces with an OpenCV Haar cascade (needs cv2.CascadeClassifier: OpenCV 4.x)."""

    def __init__(self, path: str | Path, min_size: int = 24) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise ValueError(f"OpenCV {cv2.__version__} has no CascadeClassifier to load {path}; "
                             "use a YuNet .onnx face model instead")
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ValueError(f"{path} is not a Haar cascade that OpenCV can load")
        self.min_size = min_size

    def __call__(self, image: np.ndarray) -> int:
        gray = cv2.equalizeHist(to_gray(image))
        faces = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(self.min_size, self.min_size))
        return len(faces)


class YuNetFaceDetector:
    """Faces with OpenCV's YuNet network (cv2.FaceDetectorYN) from a .onnx model file."""

    def __init__(self, path: str | Path, score_threshold: float = 0.8) -> None:
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ValueError(f"OpenCV {cv2.__version__} has no FaceDetectorYN to load {path}")
        try:
            self._detector = cv2.FaceDetectorYN.create(str(path), "", (320, 240), score_threshold)
        except cv2.error as error:
            raise ValueError(f"{path} is not a YuNet model that OpenCV can load: {str(error).strip()[:200]}") from None
        self._size: tuple[int, int] | None = None

    def __call__(self, image: np.ndarray) -> int:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._detector.setInputSize(size)
            self._size = size
        _, faces = self._detector.detect(image)
        return 0 if faces is None else len(faces)


def load_face_detector(model: str | None = None) -> tuple[FaceDetector | None, str]:
    """Load a face detector; returns (detector, description) or (None, why presence is unavailable).

    With `model` (a YuNet .onnx or a Haar .xml file) a file that is missing or unusable raises
    FileNotFoundError / ValueError, since the user asked for it. Without, the Haar frontal-face cascade
    shipped with OpenCV is used where this OpenCV has one; OpenCV 5 ships neither the cascades nor
    CascadeClassifier, so there the result is (None, reason) and presence stays off.
    """
    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"webcam face_model {model} does not exist; "
                                    "give a YuNet .onnx model or a Haar cascade .xml file")
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            return YuNetFaceDetector(path), f"YuNet model {path.name}"
        if suffix == ".xml":
            return HaarFaceDetector(path), f"Haar cascade {path.name}"
        raise ValueError(f"webcam face_model {model} must be a YuNet .onnx model or a Haar cascade .xml file")
    if not hasattr(cv2, "CascadeClassifier"):
        return None, (f"OpenCV {cv2.__version__} has no Haar face detector (CascadeClassifier); "
                      "set face_model to a YuNet .onnx file to enable presence")
    path = find_haar_cascade()
    if path is None:
        return None, f"the Haar cascade {HAAR_FRONTAL_FACE} was not found in the OpenCV installation"
    try:
        return HaarFaceDetector(path), f"Haar cascade {path}"
    except ValueError as error:
        return None, str(error)
