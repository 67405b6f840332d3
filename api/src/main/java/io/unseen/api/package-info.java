/**
 * Unseen for JVM programs: load a frozen diffusion model ({@link io.unseen.api.Unseen#load}), invert a few images of
 * an unseen domain to its prior, sample new images from it, reconstruct, analyze. {@link io.unseen.api.Unseen} is
 * the one entry point; the rest are its settings ({@link io.unseen.api.Inversion}, {@link io.unseen.api.Sampling}:
 * the only declaration of those options), its results, and the folders its runs write
 * ({@link io.unseen.api.SampleRun}, {@link io.unseen.api.ReconstructionFolder}). The command lines ({@code unseen},
 * its web app, {@code unseen-spark}) stand on this package. Every JVM that runs it needs
 * {@code --add-modules jdk.incubator.vector}.
 */
package io.unseen.api;
