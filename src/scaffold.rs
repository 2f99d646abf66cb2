//! `citywatch new-model NAME`: a new model crate from the template
//! (models/template), registered in the workspace and the registry.
//!
//! The template is compiled into the binary (so the command works from an
//! installed binary too) and is itself a workspace member that builds and
//! passes its tests, so what the command writes builds and is tested from
//! the first minute. It writes `models/NAME/` (Cargo.toml, README.md as the
//! card skeleton, src/lib.rs, src/reference.rs, tests/against_reference.rs)
//! and edits three files: the workspace Cargo.toml (member and dependency),
//! models/registry/Cargo.toml (dependency) and models/registry/src/lib.rs
//! (one line in the list). Nothing is written if any check fails.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The template's files: (path inside the crate, text).
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../models/template/Cargo.toml")),
    ("README.md", include_str!("../models/template/README.md")),
    ("src/lib.rs", include_str!("../models/template/src/lib.rs")),
    ("src/reference.rs", include_str!("../models/template/src/reference.rs")),
    ("tests/against_reference.rs", include_str!("../models/template/tests/against_reference.rs")),
];

/// Where the registry's list ends (models/registry/src/lib.rs).
const LIST_MARKER: &str = "        // new-model: registrations above this line\n";

/// What `new-model` wrote and changed.
#[derive(Debug)]
pub struct Scaffolded {
    /// The new crate's folder.
    pub dir: PathBuf,
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Files edited.
    pub edited: Vec<PathBuf>,
}

/// `model_name` in CamelCase, for the type: `alarm_burst` -> `AlarmBurst`.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The template's text with its names replaced by `name`'s.
fn render(text: &str, name: &str) -> String {
    let dashed = name.replace('_', "-");
    text.replace(
        "//! This crate is the template that `citywatch new-model NAME` copies: a small\n\
         //! model that is complete (configuration, card, dataflow, reference, test)\n\
         //! so that a new model starts from something that builds, runs and is\n\
         //! tested, and is edited from there. It is not registered. See\n\
         //! docs/writing-a-model.md.\n",
        "//! Written from citywatch's model template (`citywatch new-model`): edit it\n\
         //! into your model; docs/writing-a-model.md is the guide.\n",
    )
    .replace(
        "*The template that `citywatch new-model NAME` copies; not registered. Replace\n\
         every section with your model's own, with figures you measured.*\n",
        "*Written from the model template by `citywatch new-model`. Replace every\n\
         section with your model's own, with figures you measured.*\n",
    )
    .replace(
        "citywatch model template: alarms bunching in one community (the model `citywatch new-model` copies)",
        &format!("citywatch model: {name}"),
    )
    .replace("citywatch-model-template", &format!("citywatch-{dashed}"))
    .replace("citywatch_model_template", &format!("citywatch_{name}"))
    .replace("ModelTemplate", &camel(name))
    .replace("model_template", name)
}

/// Checks `name`: snake case, starting with a letter, at most 40 characters.
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__");
    if !ok {
        bail!(
            "'{name}' is not a model name: use snake case, a lowercase letter first, then lowercase letters, digits \
             and single underscores, at most 40 characters (e.g. alarm_burst); it is hashed into every alert id"
        );
    }
    if ["template", "registry", "model_template"].contains(&name) {
        bail!("'{name}' is reserved (models/{name} is part of citywatch); choose another name");
    }
    Ok(())
}

/// Inserts `line` after the first line of `text` equal to `after` (trimmed).
fn insert_after(text: &str, after: &str, line: &str, file: &Path) -> Result<String> {
    let at = text.find(&format!("\n{after}\n")).map(|i| i + after.len() + 2).with_context(|| {
        format!("{}: no line `{after}` to add `{}` after; add it by hand", file.display(), line.trim())
    })?;
    Ok(format!("{}{line}{}", &text[..at], &text[at..]))
}

/// Writes models/`name` under the workspace at `root` and registers it.
pub fn new_model(root: &Path, name: &str) -> Result<Scaffolded> {
    check_name(name)?;
    let manifest = root.join("Cargo.toml");
    let registry_manifest = root.join("models/registry/Cargo.toml");
    let registry_list = root.join("models/registry/src/lib.rs");
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| {
            format!(
                "{}: cannot read it; run `citywatch new-model` in the citywatch repository's root (or pass --root)",
                p.display()
            )
        })
    };
    let (ws, reg, list) = (read(&manifest)?, read(&registry_manifest)?, read(&registry_list)?);
    let dir = root.join("models").join(name);
    let dashed = name.replace('_', "-");
    if dir.exists() {
        bail!("{} already exists; choose another name or remove it", dir.display());
    }
    if ws.contains(&format!("citywatch-{dashed} ")) || list.contains(&format!("citywatch_{name}::")) {
        bail!("a model `{name}` is already registered (see models/registry/src/lib.rs)");
    }
    // Every edit is prepared before anything is written.
    let ws = insert_after(&ws, "    \"models/registry\",", &format!("    \"models/{name}\",\n"), &manifest)?;
    let ws = insert_after(
        &ws,
        "citywatch-registry = { path = \"models/registry\" }",
        &format!("citywatch-{dashed} = {{ path = \"models/{name}\" }}\n"),
        &manifest,
    )?;
    let reg = insert_after(
        &reg,
        "citywatch-response-gap.workspace = true",
        &format!("citywatch-{dashed}.workspace = true\n"),
        &registry_manifest,
    )?;
    let Some(at) = list.find(LIST_MARKER) else {
        bail!(
            "{}: the line `{}` is missing; add the model to the list by hand",
            registry_list.display(),
            LIST_MARKER.trim()
        );
    };
    let list =
        format!("{}        Box::new(citywatch_{name}::{}::default()),\n{}", &list[..at], camel(name), &list[at..]);

    let mut written = Vec::new();
    for (path, text) in TEMPLATE {
        let to = dir.join(path);
        std::fs::create_dir_all(to.parent().expect("a file in a folder"))
            .with_context(|| format!("creating {}", to.display()))?;
        std::fs::write(&to, render(text, name)).with_context(|| format!("writing {}", to.display()))?;
        written.push(to);
    }
    for (path, text) in [(&manifest, ws), (&registry_manifest, reg), (&registry_list, list)] {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Scaffolded { dir, written, edited: vec![manifest, registry_manifest, registry_list] })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the files new-model edits, as they are in this repository.
    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in ["Cargo.toml", "models/registry/Cargo.toml", "models/registry/src/lib.rs"] {
            std::fs::create_dir_all(dir.path().join(f).parent().unwrap()).unwrap();
            std::fs::copy(here.join(f), dir.path().join(f)).unwrap();
        }
        dir
    }

    #[test]
    fn writes_the_crate_and_registers_it_once() {
        let ws = workspace();
        let done = new_model(ws.path(), "alarm_burst").unwrap();
        assert_eq!(done.written.len(), TEMPLATE.len());
        let lib = std::fs::read_to_string(ws.path().join("models/alarm_burst/src/lib.rs")).unwrap();
        assert!(lib.contains("pub struct AlarmBurst") && lib.contains("\"alarm_burst\".to_owned()"));
        for (_, text) in TEMPLATE {
            let out = render(text, "alarm_burst");
            assert!(
                !out.contains("model_template") && !out.contains("ModelTemplate"),
                "a template name survived:\n{out}"
            );
            assert!(!out.contains("model-template"), "a template crate name survived:\n{out}");
        }
        let cargo = std::fs::read_to_string(ws.path().join("models/alarm_burst/Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"citywatch-alarm-burst\""));
        let root = std::fs::read_to_string(ws.path().join("Cargo.toml")).unwrap();
        assert_eq!(root.matches("\"models/alarm_burst\",").count(), 1);
        assert_eq!(root.matches("citywatch-alarm-burst = { path = \"models/alarm_burst\" }").count(), 1);
        let reg = std::fs::read_to_string(ws.path().join("models/registry/Cargo.toml")).unwrap();
        assert_eq!(reg.matches("citywatch-alarm-burst.workspace = true").count(), 1);
        let list = std::fs::read_to_string(ws.path().join("models/registry/src/lib.rs")).unwrap();
        let line = "Box::new(citywatch_alarm_burst::AlarmBurst::default()),";
        assert_eq!(list.matches(line).count(), 1);
        assert!(list.find(line) < list.find(LIST_MARKER), "registered above the marker");

        // Twice is refused, and changes nothing.
        let err = new_model(ws.path(), "alarm_burst").unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read_to_string(ws.path().join("models/registry/src/lib.rs")).unwrap(), list);
    }

    #[test]
    fn refuses_bad_names_before_writing() {
        let ws = workspace();
        for bad in ["AlarmBurst", "alarm-burst", "1st", "", "a__b", "template", "x/../y"] {
            let err = new_model(ws.path(), bad).unwrap_err().to_string();
            assert!(err.contains("not a model name") || err.contains("reserved"), "{bad}: {err}");
        }
        assert_eq!(std::fs::read_dir(ws.path().join("models")).unwrap().count(), 1, "only registry/");
    }

    #[test]
    fn outside_a_citywatch_checkout_it_says_where_to_run() {
        let empty = tempfile::tempdir().unwrap();
        let err = format!("{:#}", new_model(empty.path(), "alarm_burst").unwrap_err());
        assert!(err.contains("repository's root"), "{err}");
    }
}
