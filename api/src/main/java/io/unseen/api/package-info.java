/**
 * Unseen for JVM programs: load a frozen diffusion model ({@link io.unseen.api.Unseen#load}), invert a few images of
 * an unseen domain to its prior, sample new images from it, reconstruct, analyze. {@link io.unseen.api.Unseen} is
 * the one entry point; the rest are its settings and results. Every JVM that runs it needs
 * {@code --add-modules jdk.incubator.vector}.
 */
package io.unseen.api;
