"""Running an image classifier .tflite on a batch of images.

Quantized (int8/uint8) input and output tensors are handled here, with the scale and zero
point stored in the model, so that callers always pass float images and get float logits
whatever the quantization.
"""

from typing import Sequence

import numpy as np

from tunas_tf.errors import UserError
from tunas_tf.export.interpreter import DEFAULT_BACKENDS, LoadedInterpreter, make_interpreter


def quantize_input(images: np.ndarray, detail: dict) -> np.ndarray:
  """Maps float images to the dtype of an input tensor: q = round(x / scale) + zero_point."""
  dtype = np.dtype(detail['dtype'])
  if np.issubdtype(dtype, np.floating):
    return images.astype(dtype)
  scale, zero_point = detail['quantization']
  if scale == 0:
    raise UserError(f'Input tensor {detail["name"]!r} is {dtype} but not quantized '
                    '(scale 0); only float or quantized image inputs are supported')
  info = np.iinfo(dtype)
  q = np.round(images / scale) + zero_point
  return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(values: np.ndarray, detail: dict) -> np.ndarray:
  """Maps an output tensor to float32: x = (q - zero_point) * scale."""
  if np.issubdtype(values.dtype, np.floating):
    return values.astype(np.float32)
  scale, zero_point = detail['quantization']
  if scale == 0:
    return values.astype(np.float32)
  return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


def predict(loaded: LoadedInterpreter, images: np.ndarray) -> np.ndarray:
  """Runs a single-input, single-output model on each image in turn.

  Args:
    loaded: an interpreter from `make_interpreter`.
    images: float [N, H, W, C] images, preprocessed as the model expects.

  Returns:
    float32 outputs [N, ...] (logits for a classifier), dequantized if needed.

  Raises:
    UserError: if the images do not match the model input or the model is not
      single-input / single-output.
  """
  interpreter = loaded.interpreter
  inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
  if len(inputs) != 1 or len(outputs) != 1:
    raise UserError(f'Expected a model with one input and one output; got {len(inputs)} '
                    f'inputs and {len(outputs)} outputs')
  images = np.asarray(images, dtype=np.float32)
  model_shape = tuple(int(d) for d in inputs[0]['shape'])
  if images.ndim != len(model_shape) or images.shape[1:] != model_shape[1:]:
    raise UserError(f'Images of shape {images.shape} do not match the model input '
                    f'{model_shape} (batch dimension aside)')
  if model_shape[0] != 1:
    # Models with a fixed batch > 1 are fed one image at a time as well; a batch-1 model
    # is what phones run and what latency is measured on.
    interpreter.resize_tensor_input(inputs[0]['index'], (1,) + model_shape[1:])
    interpreter.allocate_tensors()
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
  results = []
  for image in images:
    interpreter.set_tensor(inputs[0]['index'], quantize_input(image[None], inputs[0]))
    interpreter.invoke()
    results.append(dequantize_output(interpreter.get_tensor(outputs[0]['index']), outputs[0]))
  return np.concatenate(results, axis=0)


def run_tflite(model_content: bytes,
               images: np.ndarray,
               num_threads: int = 1,
               backends: Sequence[str] = DEFAULT_BACKENDS) -> np.ndarray:
  """Runs a .tflite image classifier on float images and returns float32 logits [N, K].

  Args:
    model_content: the .tflite model bytes (float or int8 input/output).
    images: float [N, H, W, C] images.
    num_threads: interpreter threads.
    backends: interpreter backends to try, in order.

  Returns:
    float32 logits, one row per image.
  """
  loaded = make_interpreter(model_content, num_threads=num_threads, backends=backends)
  return predict(loaded, images)
