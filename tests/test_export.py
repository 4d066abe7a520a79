"""Tests of tunas_tf.export: real TFLite conversion, the LiteRT interpreter, real images."""

import importlib.util
import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from tunas_tf.errors import UserError
from tunas_tf.export import (ExportSummary, LatencyStats, calibration_images, convert_to_tflite,
                             export_model, export_saved_model, float_parity, int8_agreement,
                             make_interpreter, measure_latency, model_input_shape, predict,
                             run_tflite)
from tunas_tf.export.inference import dequantize_output, quantize_input

SHAPE = (32, 32, 3)


def _set_bn_stats(layer, rng):
  """Gives a BatchNormalization layer non-trivial statistics so that folding matters."""
  c = layer.moving_mean.shape[0]
  layer.set_weights([
      rng.uniform(0.5, 1.5, c).astype(np.float32),  # gamma
      rng.normal(0.0, 0.2, c).astype(np.float32),  # beta
      rng.normal(0.0, 0.5, c).astype(np.float32),  # moving mean
      rng.uniform(0.5, 2.0, c).astype(np.float32),  # moving variance
  ])


def _tiny_classifier(seed=0):
  keras.utils.set_random_seed(seed)
  inputs = keras.Input(SHAPE)
  x = keras.layers.Conv2D(16, 3, strides=2, padding='same', use_bias=False)(inputs)
  x = keras.layers.BatchNormalization(momentum=0.8)(x)
  x = keras.layers.ReLU()(x)
  x = keras.layers.DepthwiseConv2D(3, padding='same', use_bias=False)(x)
  x = keras.layers.BatchNormalization(momentum=0.8)(x)
  x = keras.layers.ReLU(max_value=6.0)(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  outputs = keras.layers.Dense(10)(x)
  model = keras.Model(inputs, outputs, name='tiny')
  rng = np.random.default_rng(seed)
  for layer in model.layers:
    if isinstance(layer, keras.layers.BatchNormalization):
      _set_bn_stats(layer, rng)
  return model


@pytest.fixture(scope='module')
def digits():
  """sklearn's 8x8 digits, resized to 32x32 RGB in [0, 1], with labels."""
  data = load_digits()
  images = tf.image.resize(data.images[:, :, :, None].astype(np.float32) / 16.0, SHAPE[:2])
  images = np.repeat(images.numpy(), 3, axis=-1)
  return images, data.target


@pytest.fixture(scope='module')
def model(digits):
  """The tiny classifier, briefly trained on digits so that its top-1 class varies.

  An untrained net predicts the same class for every image (its logits are dominated by
  BatchNorm offsets), which would make int8 top-1 agreement trivially 1. Training with a
  low BatchNorm momentum also leaves data-driven, non-trivial moving statistics.
  """
  m = _tiny_classifier()
  images, labels = digits
  m.compile(optimizer=keras.optimizers.Adam(0.02),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  m.fit(images[:1000], labels[:1000], batch_size=50, epochs=3, verbose=0)
  return m


@pytest.fixture(scope='module')
def float_bytes(model):
  return convert_to_tflite(model)


@pytest.fixture(scope='module')
def int8_bytes(model, digits):
  return convert_to_tflite(model, 'int8', representative_data=digits[0][:64])


def test_model_input_shape(model):
  assert model_input_shape(model) == SHAPE
  assert model_input_shape(model, (16, 16, 3)) == (16, 16, 3)
  with pytest.raises(UserError, match='input_shape'):
    model_input_shape(model, (16, 16))


class SubclassedNet(keras.Model):
  """A subclassed model: no functional inputs, so the shape must be passed."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.conv = keras.layers.Conv2D(4, 3)
    self.bn = keras.layers.BatchNormalization()
    self.pool = keras.layers.GlobalAveragePooling2D()
    self.dense = keras.layers.Dense(5)

  def call(self, x, training=False):
    return self.dense(self.pool(self.bn(self.conv(x), training=training)))


def test_subclassed_model_needs_and_accepts_input_shape():
  model = SubclassedNet()
  model(np.zeros((1,) + SHAPE, np.float32))
  _set_bn_stats(model.bn, np.random.default_rng(3))
  with pytest.raises(UserError, match='input_shape'):
    convert_to_tflite(model)
  content = convert_to_tflite(model, input_shape=SHAPE)
  assert float_parity(model, content, num_samples=2, input_shape=SHAPE) < 1e-4


def test_float_conversion_folds_batchnorm_and_matches_keras(model, float_bytes):
  interpreter = make_interpreter(float_bytes).interpreter
  detail = interpreter.get_input_details()[0]
  assert tuple(detail['shape']) == (1,) + SHAPE
  assert tuple(detail['shape_signature']) == (1,) + SHAPE  # Fixed batch, as on a phone.
  assert detail['dtype'] == np.float32
  ops = {op['op_name'] for op in interpreter._get_ops_details()}  # pylint: disable=protected-access
  # BatchNorm folded into the convolutions, variables frozen.
  assert not ops & {'VAR_HANDLE', 'READ_VARIABLE', 'RSQRT', 'MUL', 'SUB'}, ops
  diff = float_parity(model, float_bytes, num_samples=4, seed=1)
  assert 0.0 <= diff < 1e-4


def test_float_parity_detects_a_different_model(float_bytes):
  other = _tiny_classifier(seed=7)
  assert float_parity(other, float_bytes, num_samples=2) > 1e-2


def test_int8_conversion_has_int8_io_and_reports_agreement(model, float_bytes, int8_bytes,
                                                           digits):
  interpreter = make_interpreter(int8_bytes).interpreter
  for detail in interpreter.get_input_details() + interpreter.get_output_details():
    assert detail['dtype'] == np.int8
    assert detail['quantization'][0] > 0
  held_out = digits[0][1000:1400]
  assert len(set(np.argmax(model(held_out, training=False), -1))) >= 3  # Non-trivial labels.
  agree_keras = int8_agreement(model, int8_bytes, held_out)
  agree_float = int8_agreement(float_bytes, int8_bytes, held_out)
  # Keras and float TFLite give the same logits (up to round-off), so the same agreement.
  assert abs(agree_keras - agree_float) <= 0.01
  # Measured 0.965; feeding int8 inputs without their zero point drops it to 0.01.
  assert agree_float >= 0.85
  logits = run_tflite(int8_bytes, held_out[:16])
  assert logits.dtype == np.float32 and logits.shape == (16, 10)


def test_int8_requires_valid_representative_data(model):
  with pytest.raises(UserError, match='Representative'):
    convert_to_tflite(model, 'int8')
  with pytest.raises(UserError, match='shape'):
    convert_to_tflite(model, 'int8', np.zeros((2, 16, 16, 3), np.float32))
  with pytest.raises(UserError, match='no images'):
    convert_to_tflite(model, 'int8', [])
  with pytest.raises(UserError, match='quantization'):
    convert_to_tflite(model, 'int4')


def test_calibration_images_accepts_arrays_iterables_callables_and_datasets(digits):
  images, labels = digits[0][:6], digits[1][:6]
  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
  forms = [images, list(images), lambda: (im[None] for im in images), dataset]
  for form in forms:
    np.testing.assert_array_equal(calibration_images(form, SHAPE), images)


def test_quantize_dequantize_roundtrip():
  detail = {'name': 'x', 'dtype': np.int8, 'quantization': (0.02, -3)}
  x = np.linspace(-2.5, 2.5, 101, dtype=np.float32)
  q = quantize_input(x, detail)
  assert q.dtype == np.int8
  back = dequantize_output(q, detail)
  np.testing.assert_allclose(back, x, atol=0.01 + 1e-6)
  # Values beyond the int8 range saturate instead of wrapping around.
  assert quantize_input(np.float32([100.0]), detail)[0] == 127


def test_predict_rejects_wrong_image_shape(float_bytes):
  loaded = make_interpreter(float_bytes)
  with pytest.raises(UserError, match='do not match'):
    predict(loaded, np.zeros((2, 16, 16, 3), np.float32))


def test_latency_stats(float_bytes, int8_bytes):
  for content in (float_bytes, int8_bytes):
    stats = measure_latency(content, num_threads=1, warmup=2, min_runs=20, min_seconds=0.0)
    assert isinstance(stats, LatencyStats)
    assert stats.n >= 20
    assert 0.0 < stats.p10_ms <= stats.median_ms <= stats.p90_ms
    assert stats.backend == 'ai_edge_litert' and stats.num_threads == 1


def test_latency_runs_at_least_min_seconds(float_bytes):
  start = time.perf_counter()
  stats = measure_latency(float_bytes, warmup=0, min_runs=1, min_seconds=0.05)
  assert time.perf_counter() - start >= 0.05
  assert stats.n > 1


def test_latency_of_generic_multi_input_model():
  """Any inputs (shape and dtype) get random data; used by the latency-table profiler."""

  class TwoInputs(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([1, 7], tf.float32),
                                  tf.TensorSpec([3], tf.int32)])
    def __call__(self, x, n):
      return tf.reduce_sum(x * 2.0) + tf.cast(tf.reduce_sum(n), tf.float32)

  module = TwoInputs()
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [module.__call__.get_concrete_function()], module)
  stats = measure_latency(converter.convert(), warmup=1, min_runs=10, min_seconds=0.0)
  assert stats.n >= 10 and stats.median_ms > 0


@pytest.mark.parametrize('num_threads', [0, -1, True, 1.5])
def test_non_positive_num_threads_raise(float_bytes, num_threads):
  with pytest.raises(UserError, match='num_threads'):
    make_interpreter(float_bytes, num_threads=num_threads)
  with pytest.raises(UserError, match='num_threads'):
    measure_latency(float_bytes, num_threads=num_threads)


def test_invalid_timing_arguments_raise(float_bytes):
  with pytest.raises(UserError, match='min_runs'):
    measure_latency(float_bytes, min_runs=0)
  with pytest.raises(UserError, match='warmup'):
    measure_latency(float_bytes, warmup=-1)
  with pytest.raises(UserError, match='min_seconds'):
    measure_latency(float_bytes, min_seconds=-0.1)


def test_interpreter_prefers_ai_edge_litert(float_bytes):
  loaded = make_interpreter(float_bytes, num_threads=2)
  assert loaded.backend == 'ai_edge_litert'
  assert loaded.num_threads == 2


def test_interpreter_falls_back_in_the_given_order(float_bytes, digits):
  if importlib.util.find_spec('tflite_runtime') is not None:
    pytest.skip('tflite_runtime is installed, so it cannot stand for a missing backend')
  loaded = make_interpreter(float_bytes, backends=('tflite_runtime', 'tensorflow'))
  assert loaded.backend == 'tensorflow'
  images = digits[0][:4]
  np.testing.assert_allclose(predict(loaded, images), run_tflite(float_bytes, images),
                             atol=1e-5)
  with pytest.raises(UserError, match='No TFLite interpreter backend'):
    make_interpreter(float_bytes, backends=('tflite_runtime',))
  with pytest.raises(UserError, match='known interpreter backends'):
    make_interpreter(float_bytes, backends=('tflite_runtime', 'onnx'))


def test_interpreter_without_xnnpack_gives_same_logits(float_bytes, digits):
  images = digits[0][:4]
  loaded = make_interpreter(float_bytes, use_xnnpack=False)
  ops_details = loaded.interpreter._get_ops_details()  # pylint: disable=protected-access
  ops = {op['op_name'] for op in ops_details}
  assert 'DELEGATE' not in ops
  np.testing.assert_allclose(predict(loaded, images), run_tflite(float_bytes, images),
                             atol=1e-4)


def test_saved_model_reloads_with_same_outputs(model, digits, tmp_path):
  path = str(tmp_path / 'sm')
  assert export_saved_model(model, path) == path
  images = digits[0][:3]
  reloaded = tf.saved_model.load(path)
  np.testing.assert_allclose(reloaded.serve(tf.constant(images)).numpy(),
                             model(images, training=False).numpy(), atol=1e-5)
  with pytest.raises(UserError, match='already exists'):
    export_saved_model(model, path)
  export_saved_model(model, path, overwrite=True)
  # Only the final directory remains: no temporary or backup siblings.
  assert os.listdir(tmp_path) == ['sm']
  assert tf.saved_model.load(path).serve(tf.constant(images)).shape == (3, 10)


def test_export_model_int8_writes_files_and_summary(model, digits, tmp_path):
  out = str(tmp_path / 'export')
  summary = export_model(model, out, quantize='int8', representative_data=digits[0][:64],
                         agreement_images=digits[0][1000:1100], saved_model=True,
                         parity_samples=2, warmup=1, min_runs=5, min_seconds=0.0)
  assert isinstance(summary, ExportSummary)
  assert sorted(os.listdir(out)) == ['model.tflite', 'model_float.tflite', 'saved_model']
  keys = set(summary.to_dict())
  assert {'tflite_max_abs_diff', 'int8_top1_agreement', 'latency_ms', 'latency_p10_ms',
          'latency_p90_ms', 'tflite_bytes', 'interpreter_backend', 'num_threads'} <= keys
  assert summary.tflite_bytes == os.path.getsize(os.path.join(out, 'model.tflite'))
  assert summary.tflite_max_abs_diff < 1e-4
  with open(os.path.join(out, 'model.tflite'), 'rb') as f, \
       open(os.path.join(out, 'model_float.tflite'), 'rb') as g:
    assert summary.int8_top1_agreement == int8_agreement(g.read(), f.read(), digits[0][1000:1100])
  assert summary.latency_p10_ms <= summary.latency_ms <= summary.latency_p90_ms
  assert summary.latency_runs >= 5
  assert summary.interpreter_backend == 'ai_edge_litert' and summary.num_threads == 1
  with open(os.path.join(out, 'model.tflite'), 'rb') as f:
    interpreter = make_interpreter(f.read()).interpreter
  assert interpreter.get_input_details()[0]['dtype'] == np.int8
  with open(os.path.join(out, 'model_float.tflite'), 'rb') as f:
    assert make_interpreter(f.read()).interpreter.get_input_details()[0]['dtype'] == np.float32

  # Re-exporting float into the same directory replaces model.tflite and drops the stale
  # float copy of the int8 export.
  summary = export_model(model, out, parity_samples=2, warmup=1, min_runs=5, min_seconds=0.0)
  assert summary.int8_top1_agreement is None and summary.float_tflite_path is None
  assert sorted(os.listdir(out)) == ['model.tflite', 'saved_model']
  with open(os.path.join(out, 'model.tflite'), 'rb') as f:
    assert make_interpreter(f.read()).interpreter.get_input_details()[0]['dtype'] == np.float32


def test_export_model_validates_before_writing(model, tmp_path):
  out = str(tmp_path / 'never')
  with pytest.raises(UserError, match='num_threads'):
    export_model(model, out, num_threads=0)
  with pytest.raises(UserError, match='Representative'):
    export_model(model, out, quantize='int8')
  assert not os.path.exists(out)


def _cancelling_model():
  """Logits are the difference of two huge, nearly equal sums: the accumulation order of each
  kernel decides them, so float TFLite and Keras disagree far beyond round-off of the result."""
  rng = np.random.default_rng(0)
  inputs = keras.Input((16, 16, 3))
  sums = keras.layers.Dense(2, use_bias=False)
  difference = keras.layers.Dense(10, use_bias=False)
  model = keras.Model(inputs, difference(sums(keras.layers.Flatten()(inputs))))
  w = rng.choice([-1e4, 1e4], size=(768, 1)) * rng.uniform(0.5, 1.5, size=(768, 1))
  sums.set_weights([np.concatenate([w, w * (1 + 1e-6)], 1).astype(np.float32)])
  difference.set_weights([np.tile([[1.0], [-1.0]], (1, 10)).astype(np.float32)])
  return model


def test_an_export_beyond_the_parity_bounds_fails_unless_accepted(tmp_path):
  model = _cancelling_model()
  out = tmp_path / 'export'
  with pytest.raises(UserError, match=r'float TFLite differs from Keras by up to .* beyond 0.0001 '
                                      r'absolute and 1e-05 relative; nothing was written.*'
                                      r'--accept_parity_error'):
    export_model(model, str(out), parity_samples=2, warmup=1, min_runs=2, min_seconds=0.0)
  assert not out.exists()
  summary = export_model(model, str(out), parity_samples=2, warmup=1, min_runs=2,
                         min_seconds=0.0, accept_parity_error=True)
  assert summary.tflite_max_abs_diff > 1e-4 and summary.tflite_max_rel_diff > 1e-5
  assert (out / 'model.tflite').exists()
