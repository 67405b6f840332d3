package io.unseen.cli;

import io.unseen.diffusion.DomainPrior;
import io.unseen.diffusion.FrozenModel;

import java.nio.file.Path;

/** Checks shared by several commands. */
final class CommandChecks {
    private CommandChecks() {
    }

    static void priorMatchesModel(DomainPrior prior, Path priorFile, FrozenModel model) {
        if (!prior.modelFingerprint().equals(model.fingerprint())) {
            throw new IllegalArgumentException(priorFile + ": this prior was made with another model (fingerprint "
                    + prior.modelFingerprint() + ", but " + model.file().getFileName() + " is " + model.fingerprint()
                    + "); invert the references again with this model");
        }
    }
}
