//! The README's quick start (`examples/quickstart.rs`) runs and does what it says.

#[path = "../examples/quickstart.rs"]
mod quickstart;

#[test]
fn the_readme_quick_start_runs() {
    quickstart::main().expect("the quick start");
}
