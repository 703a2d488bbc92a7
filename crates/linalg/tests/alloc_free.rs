//! Conjugate gradient and the Neumann series allocate nothing once given their workspace.
//!
//! A counting global allocator records the allocations made on this test's thread while the
//! solvers run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bilevel_linalg::{
    CgParams, CgStart, CgWorkspace, DenseOp, Mat, NeumannWorkspace, Par, conjugate_gradient,
    neumann_series,
};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|c| {
            if c.get() {
                COUNT.with(|n| n.set(n.get() + 1));
            }
        });
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    COUNT.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(|n| n.get())
}

#[test]
fn solvers_with_workspaces_do_not_allocate() {
    let n = 64;
    let a = Mat::from_fn(n, n, |i, j| {
        if i == j {
            4.0
        } else if i.abs_diff(j) == 1 {
            -1.0
        } else {
            0.0
        }
    });
    let b = Mat::from_fn(n, 1, |i, _| (i % 5) as f64);
    let mut x = Mat::zeros(n, 1);
    let mut cg_ws = CgWorkspace::new(n);
    let mut nm_ws = NeumannWorkspace::new(n);
    let params = CgParams {
        rel_tol: 1e-12,
        max_iter: 200,
    };
    let mut op = DenseOp::new(a.as_ref(), Par::Seq);
    let count = allocations_during(|| {
        let info = conjugate_gradient(
            &mut op,
            b.as_ref(),
            x.as_mut(),
            CgStart::Zero,
            &params,
            &mut cg_ws,
        )
        .unwrap();
        assert!(info.iterations > 5);
        conjugate_gradient(
            &mut op,
            b.as_ref(),
            x.as_mut(),
            CgStart::Warm,
            &params,
            &mut cg_ws,
        )
        .unwrap();
        neumann_series(&mut op, b.as_ref(), 0.2, 50, x.as_mut(), &mut nm_ws).unwrap();
    });
    assert_eq!(count, 0, "the solvers allocated {count} times");
    // The counter does count: an allocation inside the window is seen.
    assert_eq!(allocations_during(|| drop(Mat::<f64>::zeros(3, 1))), 1);
}
