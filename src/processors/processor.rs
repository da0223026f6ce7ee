//! The plug-in contract. A [`Processor`] reads one transcript into a
//! [`Product`] (CPU only, on a blocking thread); the pass stores the product
//! together with the transcript's state, in one transaction, so what a
//! processor produced and what it remembers never disagree; when a
//! transcript is deleted from the folder, [`Processor::forget`] removes its
//! products in the transaction that deletes its state.

use std::any::Any;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{ProcessorSettings, Transcript, TranscriptKey};
use crate::storage::StoreError;
use crate::storage::sql::Conn;
use crate::time::UnixMicros;

/// One job over transcripts.
pub trait Processor: Send + Sync + 'static {
    /// Unique among the processors, an open slug such as "usage".
    fn name(&self) -> &str;
    /// What it extracts, in one line.
    fn description(&self) -> &str;
    /// Reads one transcript. An `Err` (a message without server paths) or a
    /// panic fails this transcript only; the pass goes on.
    fn process(&self, transcript: &Transcript) -> Result<Processed, String>;

    /// Stores the products of a batch of transcripts (all made by this
    /// processor), ending where saving each in turn with [`Product::save`]
    /// would end. The pass runs it in a savepoint: on `Err` the batch is
    /// rolled back and stored again one transcript at a time, so a
    /// transcript that cannot be stored fails alone. The default saves each
    /// in turn; a processor overrides it to store a batch in a few
    /// multi-row statements.
    fn save_all<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        products: &'c [Saving<'c>],
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        async move {
            for saving in products {
                saving.product.save(conn, saving.transcript).await?;
            }
            Ok(())
        }
        .boxed()
    }

    /// Removes what this processor stored for transcripts deleted from the
    /// folder, inside the write transaction that also deletes their state
    /// (`gone` is sorted and never empty). The default has nothing to
    /// remove; a processor whose products outlive a transcript's state
    /// overrides it, or its figures keep counting files that are gone.
    fn forget<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        gone: &'c [TranscriptKey],
    ) -> BoxFuture<'c, Result<(), StoreError>> {
        let _ = (conn, gone);
        async { Ok(()) }.boxed()
    }
}

/// One transcript's product, to store.
pub struct Saving<'a> {
    pub product: &'a dyn Product,
    pub transcript: &'a StoredTranscript,
}

/// What a processor made of one transcript.
pub struct Processed {
    /// How many items it found; what an item is depends on the processor.
    pub items: i64,
    pub product: Box<dyn Product>,
}

/// The transcript a product belongs to, as the pass stores it.
pub struct StoredTranscript {
    pub key: TranscriptKey,
    /// The read time, taken before hashing.
    pub processed_time: UnixMicros,
}

/// A processor's result for one transcript, stored inside the pass's write
/// transaction (in a savepoint of its own): it replaces what the processor
/// stored for the transcript before. An error rolls back this transcript
/// only, which then counts as failed. A product may be saved twice in one
/// transaction (when its batch is rolled back and stored again one
/// transcript at a time), so it is borrowed, not consumed.
///
/// `Any` lets a processor's [`Processor::save_all`] take its own products
/// back by type.
pub trait Product: Any + Send + Sync {
    fn save<'c>(
        &'c self,
        conn: &'c mut Conn<'_>,
        transcript: &'c StoredTranscript,
    ) -> BoxFuture<'c, Result<(), StoreError>>;
}

/// A processor with its settings, as the server runs it.
#[derive(Clone)]
pub struct Registration {
    pub processor: Arc<dyn Processor>,
    pub settings: ProcessorSettings,
}
