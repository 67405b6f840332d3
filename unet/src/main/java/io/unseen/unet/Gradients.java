package io.unseen.unet;

import io.unseen.engine.Tensor;

import java.util.Map;

/**
 * What {@link UNet#gradients} computes: the loss mean((model(x, t) - target)^2) over every output value of the batch,
 * and its gradient with respect to every parameter, under the model file's names and shapes, in its order.
 *
 * @param loss   the mean squared error, computed in double
 * @param byName parameter name to gradient, in the model's backend memory; owned by the model and overwritten by its
 *               next call (copy what you keep: {@link Tensor#toHost()})
 */
public record Gradients(double loss, Map<String, Tensor> byName) {
}
